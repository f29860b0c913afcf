"""The real langchain-openai client against a real (fake) OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from services.common.errors import LLMMisconfigured, PromptTooLong, RateLimited, Unavailable
from services.common.types import ScoredChunk
from services.generation.answering import Answerer
from services.generation.providers.base import Prompt
from services.generation.providers.openai_chat import OpenAIChatProvider
from tests.support.fake_openai import ChatRequest, Failure, FakeOpenAI

KEY = "sk-test-0123456789abcdef"
PROMPT = Prompt(
    system="Answer from the context.",
    messages=(("user", "Hi"), ("assistant", "Hello."), ("user", "Where is the Eiffel Tower?")),
    completion="unused by chat providers",
    stop=("\nQuestion:", "END"),
)


@pytest.fixture()
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY, reply=lambda request: "It is in Paris [1].") as fake:
        yield fake


def provider_for(server: FakeOpenAI, key: str = KEY, **kwargs: object) -> OpenAIChatProvider:
    return OpenAIChatProvider("test-model", key, server.base_url, **kwargs)  # type: ignore[arg-type]


def test_complete_sends_the_chat_form(server: FakeOpenAI) -> None:
    assert provider_for(server).complete(PROMPT, max_tokens=50) == "It is in Paris [1]."
    (request,) = server.requests
    assert request.model == "test-model" and not request.stream
    assert [(m["role"], m["content"]) for m in request.messages] == [
        ("system", "Answer from the context."),
        ("user", "Hi"),
        ("assistant", "Hello."),
        ("user", "Where is the Eiffel Tower?"),
    ]
    assert request.stop == ["\nQuestion:", "END"]
    assert request.max_tokens == 50
    assert request.body["temperature"] == 0.0


def test_stream_deltas_join_to_the_complete_text(server: FakeOpenAI) -> None:
    provider = provider_for(server)
    deltas = list(provider.stream(PROMPT, max_tokens=50))
    assert len(deltas) > 1
    assert "".join(deltas) == provider.complete(PROMPT, max_tokens=50)
    assert server.requests[0].stream and server.requests[0].max_tokens == 50


def test_max_tokens_limits_the_answer(server: FakeOpenAI) -> None:
    assert provider_for(server).complete(PROMPT, max_tokens=2) == "It is"


def _runs_on(request: ChatRequest) -> str:
    return "Paris.\nQuestion: and more END"


@pytest.mark.parametrize("apply_stop", [True, False])
def test_stop_strings_hold_even_when_the_server_ignores_them(apply_stop: bool) -> None:
    with FakeOpenAI(api_key=KEY, reply=_runs_on, apply_stop=apply_stop) as fake:
        provider = provider_for(fake)
        assert provider.complete(PROMPT, 50) == "Paris."
        assert "".join(provider.stream(PROMPT, 50)) == "Paris."


def test_wrong_key_is_a_configuration_error_without_leaking_the_key(server: FakeOpenAI) -> None:
    wrong = "sk-wrong-secret-key-9876"
    provider = provider_for(server, key=wrong)
    for call in (lambda: provider.complete(PROMPT, 10), lambda: list(provider.stream(PROMPT, 10))):
        with pytest.raises(LLMMisconfigured) as caught:
            call()
        message = str(caught.value)
        assert "API key" in message
        assert wrong not in message and wrong[-4:] not in message and KEY not in message
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert server.requests == []


def test_unreachable_server_is_unavailable() -> None:
    with FakeOpenAI(api_key=KEY) as fake:
        base_url = fake.base_url
    provider = OpenAIChatProvider("m", KEY, base_url, timeout_s=2, max_retries=0)
    with pytest.raises(Unavailable, match="connect"):
        provider.complete(PROMPT, 10)


def test_answerer_over_openai_cites_the_marked_chunk(server: FakeOpenAI) -> None:
    chunk = ScoredChunk("c1", "d1", "Eiffel Tower", "s", "The Eiffel Tower is in Paris.", 0, 0.9)
    answer = Answerer(provider_for(server)).answer("Where is it?", [chunk], [], 64)
    assert answer.text == "It is in Paris [1]."
    assert answer.citations == (chunk,) and answer.model == "test-model"
    user_message = server.requests[0].messages[-1]["content"]
    assert "[1] Eiffel Tower: The Eiffel Tower is in Paris." in user_message


def test_generation_span_follows_genai_conventions(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer", tracer_provider.get_tracer)
    provider_for(server).complete(PROMPT, 50)
    with pytest.raises(LLMMisconfigured):
        provider_for(server, key="wrong").complete(PROMPT, 50)
    ok, failed = exporter.get_finished_spans()
    assert ok.name == "chat test-model"
    assert dict(ok.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "test-model",
        "gen_ai.request.max_tokens": 50,
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 5,
    }
    assert failed.status.status_code == StatusCode.ERROR
    assert (failed.attributes or {})["error.type"] == "LLMMisconfigured"
    assert not failed.events  # no exception event: its text could carry key fragments


@pytest.mark.parametrize(
    ("failure", "error", "status"),
    [
        (Failure(403, "Project lacks access", kind="permission_error"), LLMMisconfigured,
         grpc.StatusCode.FAILED_PRECONDITION),
        (Failure(404, "The model does not exist", code="model_not_found"), LLMMisconfigured,
         grpc.StatusCode.FAILED_PRECONDITION),
        (Failure(400, "Unsupported parameter: 'stop'"), LLMMisconfigured,
         grpc.StatusCode.FAILED_PRECONDITION),
        (Failure(400, "This model's maximum context length is 8192 tokens",
                 code="context_length_exceeded"), PromptTooLong, grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_upstream_refusals_are_not_retried_nor_unavailable(
    server: FakeOpenAI, failure: Failure, error: type[Exception], status: grpc.StatusCode
) -> None:
    server.failure = failure
    provider = provider_for(server)
    for call in (lambda: provider.complete(PROMPT, 10), lambda: list(provider.stream(PROMPT, 10))):
        with pytest.raises(error) as caught:
            call()
        assert caught.value.code == status  # type: ignore[attr-defined]
    assert len(server.requests) == 2  # one attempt each: nothing was retried


def test_upstream_rate_limit_is_passed_on_at_once_with_its_retry_after(server: FakeOpenAI) -> None:
    server.failure = Failure(429, "Rate limit reached", code="rate_limit_exceeded",
                             kind="requests", headers=(("Retry-After", "7"),))
    with pytest.raises(RateLimited) as caught:
        provider_for(server).complete(PROMPT, 10)
    assert caught.value.retry_after_s == 7
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.metadata == {"retry_after_s": "7"}
    assert len(server.requests) == 1  # not retried while holding a generation slot
