"""Provider plumbing that needs no model: stop strings and the factory."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from services.common.errors import Unavailable
from services.generation.providers.base import StopFilter, cut_at_stop
from services.generation.providers.factory import build_provider


def feed_all(deltas: list[str], stop: tuple[str, ...]) -> list[str]:
    stop_filter = StopFilter(stop)
    out = [stop_filter.feed(d) for d in deltas]
    return [*out, stop_filter.flush()]


def test_stop_string_split_across_deltas_is_never_emitted() -> None:
    out = feed_all(["Paris", "\nQue", "stion: next"], ("\nQuestion:",))
    assert out == ["Paris", "", "", ""]


def test_held_back_tail_is_released_when_it_is_not_a_stop() -> None:
    out = feed_all(["Paris\nQ", "uiet"], ("\nQuestion:",))
    assert "".join(out) == "Paris\nQuiet"
    assert out[0] == "Paris"  # "\nQ" waited for the next delta


def test_earliest_of_several_stop_strings_wins() -> None:
    assert cut_at_stop("a END b STOP c", ("STOP", "END")) == "a "
    assert cut_at_stop("no stop here", ("STOP",)) == "no stop here"
    assert cut_at_stop("text", ()) == "text"


def test_an_answer_opening_with_its_stop_string_is_not_cut_to_nothing() -> None:
    # SmolLM2 answers "Answer:" with "\n\n" first, the very string that ends its answer.
    assert feed_all(["\n", "\nThe answer", " is France.\n\nQuestion"], ("\n\n",)) == [
        "", "The answer", " is France.", ""]
    assert cut_at_stop("  \n\nFrance [1].\n\nmore", ("\n\n",)) == "France [1]."


def test_streamed_output_equals_cut_text_for_any_split() -> None:
    text = "Answer [1].\n\nQuestion: more\n\n\n"
    stop = ("\nQuestion:", "\n\n\n")
    for size in range(1, 8):
        deltas = [text[i : i + size] for i in range(0, len(text), size)]
        assert "".join(feed_all(deltas, stop)) == cut_at_stop(text, stop) == "Answer [1].\n"


def test_openai_without_a_key_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="API key"):
        build_provider("openai", openai_model="gpt-4o-mini", openai_api_key="")


def test_unknown_provider_kind() -> None:
    with pytest.raises(ValueError, match="local"):
        build_provider("bogus")


def test_factory_builds_openai_without_network() -> None:
    provider = build_provider(
        "openai", openai_model="m", openai_api_key="k", openai_base_url="http://127.0.0.1:9/v1"
    )
    assert provider.model_name == "m"


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is not None, reason="llama_cpp present")
def test_llama_cpp_runtime_without_the_package_is_unavailable(tmp_path: Path) -> None:
    from services.generation.providers.local import LocalGGUFProvider

    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")
    provider = LocalGGUFProvider(str(model), runtime="llama_cpp")
    assert provider.model_name == "tiny"
    with pytest.raises(Unavailable, match="llama-cpp-python"):
        provider.load()


def test_unknown_local_runtime_is_refused() -> None:
    from services.generation.providers.local import LocalGGUFProvider

    with pytest.raises(ValueError, match="runtime"):
        LocalGGUFProvider("/nonexistent.gguf", runtime="onnx")
