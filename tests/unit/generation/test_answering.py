"""Answerer: grounding, citations and refusals, with a scripted LLM."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.common.errors import InvalidArgument
from services.common.types import Answer, HistoryTurn, ScoredChunk
from services.generation.answering import NO_ANSWER_TEXT, Answerer
from services.generation.providers.base import LLMProvider, Prompt

REFUSAL = "I can't answer that from the indexed documents."


class ScriptedProvider(LLMProvider):
    """Answers every prompt with the same text, streamed in 3-character pieces."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.prompts: list[Prompt] = []

    @property
    def model_name(self) -> str:
        return "scripted"

    def complete(self, prompt: Prompt, max_tokens: int) -> str:
        self.prompts.append(prompt)
        return self.reply

    def stream(self, prompt: Prompt, max_tokens: int) -> Iterator[str]:
        self.prompts.append(prompt)
        for i in range(0, len(self.reply), 3):
            yield self.reply[i : i + 3]


def chunk(n: int, text: str | None = None) -> ScoredChunk:
    return ScoredChunk(
        chunk_id=f"c{n}",
        document_id=f"d{n}",
        title=f"Title {n}",
        source=f"s3://docs/{n}.txt",
        text=text or f"Fact number {n} is about topic {n}.",
        ordinal=0,
        score=1.0 - n / 10,
    )


CHUNKS = [chunk(1), chunk(2), chunk(3)]


def answer(reply: str, chunks: list[ScoredChunk] = CHUNKS, **kwargs: object) -> Answer:
    return Answerer(ScriptedProvider(reply), **kwargs).answer("What?", chunks, [], 64)  # type: ignore[arg-type]


def test_no_chunks_refuses_without_calling_the_model() -> None:
    provider = ScriptedProvider("should not be used")
    result = Answerer(provider).answer("Where is the Eiffel Tower?", [], [], 64)
    assert result == Answer(text=REFUSAL, refused=True, model="scripted")
    assert provider.prompts == []


def test_no_chunks_stream_yields_the_refusal_then_the_answer() -> None:
    provider = ScriptedProvider("unused")
    items = list(Answerer(provider, refusal_text="Nothing indexed.").stream("Q?", [], [], 64))
    assert items == ["Nothing indexed.", Answer("Nothing indexed.", refused=True, model="scripted")]
    assert provider.prompts == []


@pytest.mark.parametrize("question", ["", "   \n\t"])
def test_empty_question_is_invalid(question: str) -> None:
    answerer = Answerer(ScriptedProvider("x"))
    with pytest.raises(InvalidArgument):
        answerer.answer(question, CHUNKS, [], 64)
    with pytest.raises(InvalidArgument):
        answerer.stream(question, CHUNKS, [], 64)  # raised before iterating


def test_cites_the_chunks_named_by_markers_and_renumbers_them() -> None:
    result = answer("Topic three [3] relates to topic one [1].")
    # No passage holds a phrase of the answer: retrieval order, and each marker still
    # names the passage the model named. The model's marker alone is no evidence.
    assert result.citations == (CHUNKS[0], CHUNKS[1], CHUNKS[2])
    assert result.text == "Topic three [3] relates to topic one [1]."
    assert not result.refused and result.model == "scripted"


def test_grouped_and_repeated_markers() -> None:
    result = answer("Fact number 3 [2, 3]. Again [2][2].")
    # Passage 3 holds the answer and comes first; every number follows its passage.
    assert result.citations == (CHUNKS[2], CHUNKS[0], CHUNKS[1])
    assert result.text == "Fact number 3 [3, 1]. Again [3][3]."


def test_invalid_markers_are_stripped_and_all_prompt_chunks_cited() -> None:
    result = answer("The tower is in Paris [9].")
    assert result.text == "The tower is in Paris."
    assert result.citations == tuple(CHUNKS)


def test_invalid_markers_removed_next_to_valid_ones() -> None:
    result = answer("Paris [0] [2] [7].")
    assert result.text == "Paris [2]."
    assert result.citations[1] == CHUNKS[1]
    assert set(result.citations) == set(CHUNKS)


def test_without_markers_cites_what_the_prompt_contained() -> None:
    chunks = [chunk(n) for n in range(1, 8)]
    result = answer("  Paris.  ", chunks, max_context_chunks=2)
    assert result.text == "Paris."
    assert result.citations == (chunks[0], chunks[1])


@pytest.mark.parametrize(
    "reply",
    [
        "I don't know.",
        "I cannot answer that.",
        "The answer is: .",
        "The context does not mention it.",
        "Sorry, that is not in the context.",
    ],
)
def test_model_declining_becomes_the_refusal(reply: str) -> None:
    result = answer(reply)
    assert result == Answer(text=REFUSAL, refused=True, model="scripted")


@pytest.mark.parametrize("reply", ["", "   ", "[1]."])
def test_an_empty_answer_still_returns_the_passages(reply: str) -> None:
    result = answer(reply)
    assert not result.refused
    assert result.text == NO_ANSWER_TEXT
    assert result.citations == tuple(CHUNKS)


def test_an_answer_that_only_sounds_negative_is_kept() -> None:
    result = answer("The documents are not signed [1].")
    assert not result.refused
    assert result.citations[0] == CHUNKS[0]


def test_filler_and_a_marker_cut_off_by_max_tokens_are_removed() -> None:
    assert answer("The answer is: 1085 [1] [2").text == "1085 [1]"


def test_a_leading_bare_marker_is_dropped() -> None:
    result = answer("[2]. England")
    assert result.text == "England"
    assert result.citations == tuple(CHUNKS)


def test_prompt_numbers_sources_with_titles_and_asks_for_citations() -> None:
    provider = ScriptedProvider("ok")
    Answerer(provider).answer("Where is topic two?", CHUNKS, [], 64)
    prompt = provider.prompts[0]
    assert "[1] Title 1: Fact number 1" in prompt.completion
    assert "[3] Title 3: Fact number 3" in prompt.completion
    assert prompt.completion.rstrip().endswith("Question: Where is topic two?\nAnswer:")
    role, content = prompt.messages[-1]
    assert role == "user" and "[2] Title 2: Fact number 2" in content
    assert "[n]" in prompt.system and "only" in prompt.system
    assert "\nQuestion:" in prompt.stop


def test_context_is_limited_in_chunks_and_characters() -> None:
    provider = ScriptedProvider("ok")
    long_chunks = [chunk(n, text=("word " * 400).strip()) for n in range(1, 5)]
    Answerer(provider, max_context_chunks=3, max_context_chars=2500).answer(
        "Q?", long_chunks, [], 64
    )
    completion = provider.prompts[0].completion
    context = completion.split("Context:\n")[-1]
    assert "[2] Title 2" in context and "[3] Title 3" not in context  # 2000 + clipped 500
    assert context.count("word") <= 2500 // 5 + 1


def test_recent_history_is_in_both_prompt_forms() -> None:
    provider = ScriptedProvider("ok")
    history = [HistoryTurn("user", f"old question {n}") for n in range(10)] + [
        HistoryTurn("user", "Which team won?"),
        HistoryTurn("assistant", "The Broncos won [2]."),
    ]
    Answerer(provider).answer("Where was it played?", CHUNKS, history, 64)
    prompt = provider.prompts[0]
    assert "User: Which team won?\nAssistant: The Broncos won." in prompt.completion
    assert "old question 0" not in prompt.completion
    assert prompt.messages[-3:-1] == (
        ("user", "Which team won?"),
        ("assistant", "The Broncos won."),
    )
    assert prompt.messages[-1][0] == "user" and "Where was it played?" in prompt.messages[-1][1]


def test_stream_yields_deltas_then_the_final_answer() -> None:
    reply = "  Topic two is covered [2][5]."
    answerer = Answerer(ScriptedProvider(reply))
    items = list(answerer.stream("What?", CHUNKS, [], 64))
    deltas, final = items[:-1], items[-1]
    assert all(isinstance(d, str) and d for d in deltas)
    assert "".join(str(d) for d in deltas) == reply.lstrip()
    assert final == answerer.answer("What?", CHUNKS, [], 64)
    assert isinstance(final, Answer) and final.text == "Topic two is covered [2]."
    assert final.citations[1] == CHUNKS[1]


def test_max_tokens_must_be_positive() -> None:
    with pytest.raises(InvalidArgument):
        Answerer(ScriptedProvider("x")).answer("Q?", CHUNKS, [], 0)
