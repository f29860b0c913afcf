"""The OpenAI-compatible API through the real gateway, with the official clients.

The platform runs as `make run` runs it, its generation service on the openai provider
against the fake OpenAI server (so answers are known and upstream failures can be made),
with room for 2 generations and 1 waiting request.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from langchain_openai import ChatOpenAI

from services.common.embeddings import SentenceTransformerEmbeddings
from tests.e2e.conftest import RunningStack, dump_logs, stack_config, start_stack
from tests.support.fake_openai import ChatRequest, Failure, FakeOpenAI

pytestmark = pytest.mark.e2e
KEY = "sk-upstream-test-key-0042"
REPLY = "The relay model ZX-4491 trips at 40 amperes [1]."
RELAY = "The ZX-4491 relay trips at 40 amperes and resets after 3 seconds."
GARDEN = "Tomatoes in the community garden are watered every Tuesday morning."
RETRY_AFTER_S = 3


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY, reply=lambda request: REPLY) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(fake: FakeOpenAI) -> None:
    fake.reply, fake.failure, fake.chunk_delay_s = (lambda request: REPLY), None, 0.0


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, fake: FakeOpenAI, request: pytest.FixtureRequest
) -> Iterator[RunningStack]:
    root = tmp_path_factory.mktemp("openai")
    failed_before = request.session.testsfailed
    running = RunningStack(start_stack(stack_config(root, {
        "RAGCHAT_LLM_PROVIDER": "openai",
        "RAGCHAT_OPENAI_BASE_URL": fake.base_url,
        "RAGCHAT_OPENAI_API_KEY": KEY,
        "RAGCHAT_OPENAI_MODEL": "upstream-model",
        "RAGCHAT_MAX_CONCURRENT_GENERATIONS": "2",
        "RAGCHAT_GENERATION_QUEUE": "1",
        "RAGCHAT_OVERLOAD_RETRY_AFTER_S": str(RETRY_AFTER_S),
    })), root / "spans.jsonl")
    for name, text in (("relay.txt", RELAY), ("garden.txt", GARDEN)):
        accepted = running.upload(name, text.encode()).json()
        assert running.wait_job(accepted["job_id"])["status"] == "indexed"
    yield running
    running.http.close()
    running.stack.stop()
    if request.session.testsfailed > failed_before:
        dump_logs(root / "logs")


@pytest.fixture(scope="module")
def client(stack: RunningStack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.stack.base_url}/v1", api_key="unused", max_retries=0)


ASK = [{"role": "user", "content": "When does the ZX-4491 relay trip?"}]


def test_models_lists_the_pipelines_and_unknown_models_are_404(
    client: openai.OpenAI, stack: RunningStack
) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"ragchat", "ragchat-dense", "ragchat-keyword", "ragchat-hybrid"} <= ids
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4", messages=ASK)  # type: ignore[arg-type]
    resp = stack.http.post("/v1/chat/completions", json={"model": "gpt-4", "messages": ASK})
    assert resp.status_code == 404
    assert resp.json() == {"error": {
        "message": "The model 'gpt-4' does not exist; see GET /v1/models",
        "type": "invalid_request_error", "param": "model", "code": "model_not_found"}}
    legacy = stack.http.post("/v1/completions", json={"model": "ragchat", "prompt": "Hi"})
    assert legacy.status_code == 404 and legacy.json()["error"]["code"] == "unknown_url"


def test_completion_answers_with_citations_its_markers_index(
    client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    history: list[Any] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi, I maintain relays."},
        {"role": "assistant", "content": "Hello! Ask away."},
        *ASK,
    ]
    completion = client.chat.completions.create(model="ragchat", messages=history)
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == "ragchat"
    (choice,) = completion.choices
    assert choice.message.role == "assistant" and choice.message.content == REPLY
    assert choice.finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens > completion.usage.prompt_tokens > 0
    citations = (completion.model_extra or {})["citations"]
    assert citations[0]["source"] == "relay.txt" and "40 amperes" in citations[0]["text"]
    # Earlier messages reach the model as history; the last one is the question.
    sent = [(m["role"], m["content"]) for m in fake.requests[-1].messages]
    assert ("user", "Hi, I maintain relays.") in sent and ("assistant", "Hello! Ask away.") in sent
    assert "When does the ZX-4491 relay trip?" in sent[-1][1]


def test_stream_sends_openai_chunks_then_citations_usage_and_done(
    client: openai.OpenAI, stack: RunningStack
) -> None:
    chunks = list(client.chat.completions.create(
        model="ragchat-hybrid", messages=ASK, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True}))
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason][0]
    assert final.choices[0].finish_reason == "stop"
    assert (final.model_extra or {})["citations"][0]["source"] == "relay.txt"
    # Every [n] streamed maps onto a citation of the final chunk.
    renumbered = (final.model_extra or {})["renumbered"]
    streamed = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
    assert streamed and {int(n) for n in renumbered} == streamed
    assert all(1 <= m <= len((final.model_extra or {})["citations"]) for m in renumbered.values())
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    with stack.http.stream("POST", "/v1/chat/completions",
                           json={"model": "ragchat", "messages": ASK, "stream": True}) as resp:
        lines = [line for line in resp.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"


def test_langchain_chat_openai_invokes_and_streams(stack: RunningStack) -> None:
    llm = ChatOpenAI(model="ragchat", base_url=f"{stack.stack.base_url}/v1",
                     api_key="unused", max_retries=0)  # type: ignore[arg-type]
    question = "When does the ZX-4491 relay trip?"
    assert llm.invoke(question).content == REPLY
    assert "".join(str(part.content) for part in llm.stream(question)) == REPLY


def test_session_id_continues_a_stored_session(
    client: openai.OpenAI, stack: RunningStack, fake: FakeOpenAI
) -> None:
    session_id = stack.http.post("/sessions").json()["session_id"]
    extra = {"session_id": session_id}
    first = client.chat.completions.create(model="ragchat", messages=ASK, extra_body=extra)
    assert (first.model_extra or {})["session_id"] == session_id
    follow_up: Any = [{"role": "user", "content": "And when does it reset?"}]
    client.chat.completions.create(model="ragchat", messages=follow_up, extra_body=extra)
    sent = [m["content"] for m in fake.requests[-1].messages]
    # The stored first exchange (old [n] markers are dropped from history).
    assert ASK[0]["content"] in sent and REPLY.replace(" [1]", "") in sent
    turns = stack.http.get(f"/sessions/{session_id}").json()["turns"]
    assert [t["content"] for t in turns] == [ASK[0]["content"], REPLY,
                                             "And when does it reset?", REPLY]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="ragchat", messages=ASK,
                                       extra_body={"session_id": "no-such-session"})


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "assistant", "content": "Hi"}]}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": ASK, "topk": 3}, "topk"),
    ({"messages": ASK, "n": 2}, "n"),
    ({"messages": ASK, "mode": "fuzzy"}, "mode"),
    ({"messages": ASK, "model": "ragchat-dense", "mode": "keyword"}, "mode"),
])
def test_bad_requests_are_400_in_openai_shape(
    stack: RunningStack, client: openai.OpenAI, body: dict[str, Any], param: str
) -> None:
    resp = stack.http.post("/v1/chat/completions", json={"model": "ragchat", **body})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert error["message"]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model=body.get("model", "ragchat"), messages=body["messages"],
            extra_body={k: v for k, v in body.items() if k not in ("model", "messages")})


def test_embeddings_float_and_base64_are_the_retrieval_models_vectors(
    client: openai.OpenAI, stack: RunningStack
) -> None:
    texts = [RELAY, "a short query"]
    # The service's model at the service's precision (bf16 on an AMX CPU, else fp32).
    expected = SentenceTransformerEmbeddings(precision="auto").embed_documents(texts)
    floats = client.embeddings.create(model="ragchat-embedding", input=texts,
                                      encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1] and floats.usage.prompt_tokens > 0
    got = np.array([d.embedding for d in floats.data])
    assert got.shape == (2, 384) and np.allclose(got, expected, atol=1e-5)
    raw = stack.http.post("/v1/embeddings", json={
        "model": "ragchat-embedding", "input": RELAY, "encoding_format": "base64"}).json()
    vector = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(vector, expected[0], atol=1e-5)
    # The openai client asks for base64 by default and decodes it itself.
    (decoded,) = client.embeddings.create(model="ragchat-embedding", input=RELAY).data
    assert np.allclose(decoded.embedding, expected[0], atol=1e-5)
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="text-embedding-3-small", input=RELAY)
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="ragchat-embedding", input=[""])


def _slow(request: ChatRequest) -> str:
    time.sleep(2.5)
    return REPLY


def test_beyond_capacity_requests_get_429_with_retry_after_at_once(
    stack: RunningStack, fake: FakeOpenAI
) -> None:
    fake.reply = _slow
    body = {"model": "ragchat", "messages": ASK}

    def post(path: str, payload: dict[str, Any]) -> tuple[int, float, httpx.Response]:
        start = time.monotonic()
        resp = httpx.post(f"{stack.stack.base_url}{path}", json=payload, timeout=60)
        return resp.status_code, time.monotonic() - start, resp

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: post("/v1/chat/completions", body), range(6)))
    served = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 429]
    assert len(served) == 3 and len(refused) == 3  # 2 running + 1 queued
    first_answer = min(elapsed for _, elapsed, _ in served)
    for _, elapsed, resp in refused:
        assert elapsed < first_answer  # refused at once, not after waiting for a slot
        assert resp.headers["Retry-After"] == str(RETRY_AFTER_S)
        assert resp.json()["error"]["type"] == "rate_limit_error"
    # /query shares the capacity and answers in the REST error shape.
    with ThreadPoolExecutor(4) as pool:
        busy = [pool.submit(post, "/v1/chat/completions", body) for _ in range(3)]
        time.sleep(1.0)
        status, _, resp = post("/query", {"question": "When does the relay trip?"})
        assert [f.result()[0] for f in busy] == [200, 200, 200]
    assert status == 429 and resp.json()["error"] == "overloaded"
    assert resp.headers["Retry-After"] == str(RETRY_AFTER_S)


@pytest.mark.parametrize(("failure", "status", "code"), [
    (Failure(429, "Rate limit reached", "rate_limit_exceeded", "requests",
              (("Retry-After", "7"),)), 429, "rate_limited"),
    (Failure(401, "Incorrect API key provided", "invalid_api_key"), 502, "llm_misconfigured"),
    (Failure(400, "This model's maximum context length is 8192 tokens",
              "context_length_exceeded"), 422, "prompt_too_long"),
])
def test_upstream_llm_errors_reach_clients_with_their_meaning(
    stack: RunningStack, fake: FakeOpenAI, failure: Failure, status: int, code: str
) -> None:
    fake.failure = failure
    before = len(fake.requests)
    resp = stack.http.post("/query", json={"question": "When does the relay trip?"})
    assert resp.status_code == status and resp.json()["error"] == code, resp.text
    assert len(fake.requests) == before + 1  # not retried, neither here nor by the gateway
    if status == 429:
        assert resp.headers["Retry-After"] == "7"
    v1 = stack.http.post("/v1/chat/completions", json={"model": "ragchat", "messages": ASK})
    assert v1.status_code == status and v1.json()["error"]["code"] == code
    assert v1.headers.get("Retry-After") == ("7" if status == 429 else None)
    with stack.http.stream("POST", "/v1/chat/completions",
                           json={"model": "ragchat", "messages": ASK, "stream": True}) as s:
        last = [line for line in s.iter_lines() if line][-1]
    assert json.loads(last.removeprefix("data: "))["error"]["code"] == code


def test_generation_dying_mid_stream_ends_with_an_error_chunk(
    client: openai.OpenAI, stack: RunningStack, fake: FakeOpenAI
) -> None:
    """Runs last: it kills the generation service (the supervisor restarts it)."""
    fake.chunk_delay_s = 0.3
    stream = client.chat.completions.create(model="ragchat", messages=ASK, stream=True)  # type: ignore[arg-type]
    parts: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
                if len(parts) == 1:
                    stack.stack.kill("generation")
    assert parts and "".join(parts) != REPLY  # it died mid-answer
    assert caught.value.code == "unavailable" and "try again" in caught.value.message
