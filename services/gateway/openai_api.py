"""The OpenAI-compatible API: /v1/chat/completions, /v1/models, /v1/embeddings.

Chat runs the /query pipeline (retrieval, generation, memory) from services.gateway.query;
only the wire format differs.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from ragchat.common.v1 import common_pb2
from ragchat.retrieval.v1 import retrieval_pb2

from services.gateway import capacity
from services.gateway.clients import ServiceClients
from services.gateway.config import GatewaySettings
from services.gateway.errors import allowed_methods
from services.gateway.openai_errors import OpenAIError, OpenAIRoute, as_openai_error
from services.gateway.openai_schemas import (
    ChatChoice,
    ChatCompletion,
    ChatCompletionMessage,
    ChatCompletionRequest,
    ChatMessage,
    EmbeddingItem,
    EmbeddingList,
    EmbeddingRequest,
    EmbeddingUsage,
    ModelCard,
    ModelList,
    Usage,
)
from services.gateway.openapi import COMMON, OpenAIErrorBody, errors, event_stream, json_body
from services.gateway.query import (
    citations_view,
    generate,
    generate_stream,
    prepare_context,
    remember,
    renumbered_view,
)
from services.gateway.schemas import QueryRequest, SearchMode

router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)
_CHAT_ERRORS = errors(*COMMON, 400, 404, 413, 415, 422, 502, model=OpenAIErrorBody)
_CHAT_STREAM = event_stream("with `stream: true`: chat.completion.chunk events, then "
                            "`data: [DONE]`")[200]["content"]

# Chat models: the RAG pipeline with the service's default search mode, or a fixed one.
CHAT_MODELS: dict[str, SearchMode | None] = {
    "ragchat": None,
    "ragchat-dense": "dense",
    "ragchat-keyword": "keyword",
    "ragchat-hybrid": "hybrid",
}
EMBEDDING_MODEL = "ragchat-embedding"
_CREATED = 1_767_225_600  # 2026-01-01: when these model names were first served
_TOKEN = re.compile(r"\w+|[^\w\s]")


def _not_found(model: str) -> OpenAIError:
    return OpenAIError(
        404, f"The model '{model}' does not exist; see GET /v1/models", "model_not_found", "model"
    )


@router.get("/models", response_model=ModelList,
            responses=errors(*COMMON, model=OpenAIErrorBody))
async def list_models() -> ModelList:
    """The RAG pipelines served as chat models, and the embedding model."""
    names = [*CHAT_MODELS, EMBEDDING_MODEL]
    return ModelList(data=[ModelCard(id=name, created=_CREATED) for name in names])


@router.get("/models/{model}", response_model=ModelCard,
            responses=errors(*COMMON, 404, model=OpenAIErrorBody))
async def get_model(model: str) -> ModelCard:
    if model not in CHAT_MODELS and model != EMBEDDING_MODEL:
        raise _not_found(model)
    return ModelCard(id=model, created=_CREATED)


def _mode(body: ChatCompletionRequest) -> SearchMode | None:
    if body.model not in CHAT_MODELS:
        raise _not_found(body.model)
    fixed = CHAT_MODELS[body.model]
    if fixed and body.mode and body.mode != fixed:
        raise OpenAIError(400, f"model {body.model} searches in {fixed} mode", param="mode")
    return fixed or body.mode


def _conversation(
    messages: Sequence[ChatMessage], max_turns: int
) -> tuple[str, list[common_pb2.Turn]]:
    """The last user message as the question; earlier user/assistant messages as history."""
    if messages[-1].role != "user":
        raise OpenAIError(400, "the last message must be the user's question", param="messages")
    try:
        texts = [(m.role, m.text().strip()) for m in messages]
    except ValueError as exc:
        raise OpenAIError(400, str(exc), param="messages") from None
    if not texts[-1][1]:
        raise OpenAIError(400, "the last user message must not be empty", param="messages")
    roles = {"user": common_pb2.ROLE_USER, "assistant": common_pb2.ROLE_ASSISTANT}
    history = [
        common_pb2.Turn(role=roles[role], content=text)
        for role, text in texts[:-1]
        if role in roles and text
    ]
    return texts[-1][1], history[-max_turns:] if max_turns else []


def _tokens(*texts: str) -> int:
    """An approximate token count (words and punctuation)."""
    return sum(len(_TOKEN.findall(text)) for text in texts)


class _Chat:
    """One chat completion: its question, context and what is sent back."""

    def __init__(self, body: ChatCompletionRequest, request: Request) -> None:
        self.body = body
        self.clients: ServiceClients = request.app.state.clients
        self.settings: GatewaySettings = request.app.state.settings
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.max_tokens = body.max_completion_tokens or body.max_tokens or 0
        self.session_id = ""
        self.question = ""
        self.history: list[common_pb2.Turn] = []
        self.chunks: list[common_pb2.Chunk] = []

    async def prepare(self) -> None:
        mode = _mode(self.body)
        question, history = _conversation(self.body.messages, self.settings.history_turns)
        options = self.body.model_dump(include={"top_k", "min_score", "rerank", "filter"})
        query = QueryRequest(
            question=question, session_id=self.body.session_id, mode=mode, **options
        )
        self.session_id, self.history, self.chunks = await prepare_context(
            query, self.clients, self.settings, None if self.body.session_id else history
        )
        self.question = query.question

    def usage(self, answer: str) -> Usage:
        prompt = _tokens(
            self.question, *(t.content for t in self.history), *(c.text for c in self.chunks)
        )
        completion = _tokens(answer)
        return Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )

    async def finish(self, answer: str) -> None:
        if self.session_id:
            await remember(self.clients, self.settings, self.session_id, self.question, answer)

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        data = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.body.model,
            "system_fingerprint": None,
            "choices": [choice] if delta or finish else [],
            **extra,
        }
        return f"data: {json.dumps(data)}\n\n"


@router.post(
    "/chat/completions", response_model=ChatCompletion, dependencies=[Depends(json_body)],
    responses={**_CHAT_ERRORS, 200: {"content": _CHAT_STREAM}},
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request
) -> ChatCompletion | capacity.AdmittedStream:
    """Answer the last user message from the indexed documents, in OpenAI's format.

    `citations` (top level, and on the final stream chunk) is what `[n]` in the text
    points at, n from 1.
    """
    chat = _Chat(body, request)
    slots = capacity.slots(request)
    with slots.admit() as admission:  # a full gateway refuses before any work
        await chat.prepare()
        if body.stream:  # the response releases the admission when it ends
            return capacity.AdmittedStream(_stream(chat, slots), admission.hand_over())
        async with slots.generating():
            answer = await generate(
                chat.clients, chat.settings, chat.question, chat.chunks, chat.history,
                chat.max_tokens,
            )
    await chat.finish(answer.answer)
    return ChatCompletion(
        id=chat.id,
        created=chat.created,
        model=body.model,
        choices=[ChatChoice(message=ChatCompletionMessage(content=answer.answer))],
        usage=chat.usage(answer.answer),
        citations=citations_view(answer.citations),
        session_id=chat.session_id or None,
    )


async def _stream(chat: _Chat, slots: capacity.GenerationSlots) -> AsyncIterator[str]:
    # After the 200, a failure is sent as an OpenAI error chunk (the openai client raises
    # it as APIError); the stream never just closes.
    include_usage = bool(chat.body.stream_options and chat.body.stream_options.include_usage)
    try:
        async with slots.generating():
            yield chat.chunk({"role": "assistant", "content": ""})
            parts = generate_stream(
                chat.clients, chat.settings, chat.question, chat.chunks, chat.history,
                chat.max_tokens,
            )
            async for part in parts:
                if isinstance(part, str):
                    yield chat.chunk({"content": part})
                    continue
                await chat.finish(part.answer)
                # `renumbered`: each [n] as streamed -> its number in `citations` (as
                # in /query/stream's done event); the non-stream answer is final already.
                extra: dict[str, Any] = {
                    "citations": [c.model_dump() for c in citations_view(part.citations)],
                    "renumbered": renumbered_view(part),
                }
                if chat.session_id:
                    extra["session_id"] = chat.session_id
                yield chat.chunk({}, "stop", **extra)
                if include_usage:
                    yield chat.chunk({}, usage=chat.usage(part.answer).model_dump())
        yield "data: [DONE]\n\n"
    except Exception as exc:  # noqa: BLE001 - reported to the client in the stream
        yield f"data: {json.dumps(as_openai_error(exc).body())}\n\n"


def _encoded(values: Sequence[float], encoding: str) -> list[float] | str:
    if encoding == "base64":  # little-endian float32, as OpenAI sends it
        return base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode("ascii")
    return list(values)


@router.post("/embeddings", response_model=EmbeddingList, dependencies=[Depends(json_body)],
             responses=errors(*COMMON, 400, 404, 413, 415, model=OpenAIErrorBody))
async def embeddings(body: EmbeddingRequest, request: Request) -> EmbeddingList:
    """Embeddings from the retrieval service's model: the vectors the index holds."""
    if body.model != EMBEDDING_MODEL:
        raise _not_found(body.model)
    clients: ServiceClients = request.app.state.clients
    settings: GatewaySettings = request.app.state.settings
    texts = [body.input] if isinstance(body.input, str) else body.input
    found = await clients.retrieval.Embed(
        retrieval_pb2.EmbedRequest(texts=texts), timeout=settings.deadline_s
    )
    if body.dimensions is not None and body.dimensions != found.dimensions:
        message = f"{EMBEDDING_MODEL} has {found.dimensions} dimensions"
        raise OpenAIError(400, message, param="dimensions")
    return EmbeddingList(
        data=[
            EmbeddingItem(index=i, embedding=_encoded(e.values, body.encoding_format))
            for i, e in enumerate(found.embeddings)
        ],
        model=EMBEDDING_MODEL,
        usage=EmbeddingUsage(prompt_tokens=found.total_tokens, total_tokens=found.total_tokens),
    )


@router.api_route(
    "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
async def unknown_endpoint(path: str, request: Request) -> None:
    """Anything else under /v1 (e.g. the legacy /v1/completions): 404 in OpenAI's shape;
    a known path with another method: 405 with the whole Allow list."""
    allow = allowed_methods(request)
    if allow:
        message = f"{request.method} is not allowed on /v1/{path}"
        raise OpenAIError(405, message, "method_not_allowed", headers={"Allow": ", ".join(allow)})
    raise OpenAIError(404, f"Unknown endpoint /v1/{path}", "unknown_url")
