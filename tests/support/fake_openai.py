"""A small, real OpenAI-compatible HTTP server for tests (Chat Completions only).

It listens on 127.0.0.1 (port 0), checks the bearer key, records what it was
asked and answers with a configurable reply, plain or streamed as SSE.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class ChatRequest:
    """What the server received in one POST /v1/chat/completions."""

    model: str
    messages: list[dict[str, Any]]
    stop: list[str] | None
    max_tokens: int | None
    stream: bool
    body: dict[str, Any]


Reply = Callable[[ChatRequest], str]


@dataclass(frozen=True)
class Failure:
    """An error the server answers every chat request with, as OpenAI would."""

    status: int
    message: str
    code: str | None = None
    kind: str = "invalid_request_error"
    headers: tuple[tuple[str, str], ...] = ()


class FakeOpenAI:
    """Start with FakeOpenAI(api_key=..., reply=...); use as a context manager or close()."""

    def __init__(
        self, api_key: str = "test-key", reply: Reply | None = None, apply_stop: bool = True
    ) -> None:
        self.api_key = api_key
        self.apply_stop = apply_stop  # False: behave like servers that ignore `stop`
        self.reply: Reply = reply or (lambda request: "Hello from the fake model.")
        self.requests: list[ChatRequest] = []
        self.failure: Failure | None = None  # set to make every request fail
        self.chunk_delay_s = 0.0  # pause between streamed chunks
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler_for(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._json(404, _error("Unknown path", "invalid_request_error"))
                return
            if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                # Like OpenAI, echo part of the key: callers must not pass this on.
                given = self.headers.get("Authorization", "")[-4:]
                message = f"Incorrect API key provided: ...{given}"
                self._json(401, _error(message, "invalid_request_error", "invalid_api_key"))
                return
            request = _parse(body)
            fake.requests.append(request)
            if fake.failure is not None:
                failure = fake.failure
                error = _error(failure.message, failure.kind, failure.code)
                self._json(failure.status, error, failure.headers)
                return
            text, finish = _apply_limits(request, fake.reply(request), fake.apply_stop)
            if request.stream:
                self._sse(request, text, finish)
            else:
                self._json(200, _completion(request, text, finish))

        def _json(
            self, status: int, payload: dict[str, Any], headers: tuple[tuple[str, str], ...] = ()
        ) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _sse(self, request: ChatRequest, text: str, finish: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            for chunk in _stream_chunks(request, text, finish):
                time.sleep(fake.chunk_delay_s)
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    return Handler


def _parse(body: dict[str, Any]) -> ChatRequest:
    stop = body.get("stop")
    return ChatRequest(
        model=str(body.get("model", "")),
        messages=list(body.get("messages", [])),
        stop=[stop] if isinstance(stop, str) else stop,
        max_tokens=body.get("max_completion_tokens", body.get("max_tokens")),
        stream=bool(body.get("stream", False)),
        body=body,
    )


def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _apply_limits(request: ChatRequest, text: str, apply_stop: bool) -> tuple[str, str]:
    """Like a real server: cut at stop strings, then at max_tokens (one word = one token)."""
    finish = "stop"
    for stop in (request.stop or []) if apply_stop else []:
        if stop and stop in text:
            text = text[: text.index(stop)]
    words = text.split(" ")
    if request.max_tokens is not None and len(words) > request.max_tokens:
        text, finish = " ".join(words[: request.max_tokens]), "length"
    return text, finish


def _completion(request: ChatRequest, text: str, finish: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": len(text.split()),
            "total_tokens": 10 + len(text.split()),
        },
    }


def _stream_chunks(request: ChatRequest, text: str, finish: str) -> list[dict[str, Any]]:
    pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
    deltas = [{"role": "assistant", "content": ""}] + [{"content": p} for p in pieces]
    chunks = [_chunk(request, delta, None) for delta in deltas]
    chunks.append(_chunk(request, {}, finish))
    return chunks


def _chunk(request: ChatRequest, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
