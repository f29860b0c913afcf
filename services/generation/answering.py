"""Grounded answers: prompt from retrieved chunks, citations from the [n] markers."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence

from services.common.errors import InvalidArgument
from services.common.types import Answer, HistoryTurn, ScoredChunk
from services.generation.citations import (
    cited_numbers,
    order_by_support,
    renumber,
    strip_markers,
)
from services.generation.providers.base import LLMProvider, Prompt

logger = logging.getLogger(__name__)

DEFAULT_REFUSAL = "I can't answer that from the indexed documents."
NO_ANSWER_TEXT = "I could not compose an answer; the cited passages are the most relevant."
MAX_QUESTION_CHARS = 4000
MAX_HISTORY_TURNS = 6
MAX_HISTORY_TURN_CHARS = 500
_MIN_CLIPPED_CHUNK_CHARS = 200  # below this a clipped chunk is noise, not context

_SYSTEM = (
    "You answer questions using only the numbered context passages the user gives. "
    "Answer briefly, in a few sentences at most. Cite the passages you used as [n], "
    "for example [1] or [2][3]. If the context does not contain the answer, reply "
    "exactly: I don't know."
)
# A completion prompt for small local models; one worked example teaches them the
# answer length and the [n] citation better than any instruction does (measured on
# SQuAD-style paragraphs with SmolLM2-135M). No "say I don't know" clause: with one,
# the 135M model declined 6 of 8 answerable e2e questions; irrelevant context is
# refused by the retrieval threshold instead.
_COMPLETION_INSTRUCTIONS = (
    "Answer the question with a short phrase copied from the context below.\n\n"
    "Context:\n[1] Moon: The Moon orbits the Earth once every 27 days.\n\n"
    "Question: How often does the Moon orbit the Earth?\nAnswer: Once every 27 days [1].\n\n"
)
_HISTORY_HEADER = "Conversation so far:"
STOP = ("\nQuestion:", "\nContext:", "\n" + _HISTORY_HEADER, "<|im_end|>")
COMPLETION_STOP = ("\n\n",)

# Filler small models put first (a bare marker cites nothing), and a marker cut
# off by max_tokens.
_FILLER = re.compile(
    r"^(the answer( to (this|the) question)? is\b\s*:?\s*|(\[[\d,\s]*\]\s*)+[.:;,]?\s*)+",
    re.IGNORECASE,
)
_CUT_MARKER = re.compile(r"\s*\[[\d,\s]*$")
_REFUSAL_START = re.compile(
    r"^(i (do not|don't|cannot|can't|am unable|am not able|could not|couldn't)\b"
    r"|(sorry|unfortunately)\b"
    r"|(the )?(provided )?(context|passages?|documents?|sources?|text) "
    r"(does not|doesn't|do not|don't) (contain|mention|say|provide|include|specify|state)"
    r"|(the )?(answer|information) (is not|isn't) (in|mentioned|provided|available|given)"
    r"|there is no (information|answer|mention)\b|no (information|answer)\b"
    r"|not (mentioned|provided|found|available|specified|stated)\b)"
)
_REFUSAL_ANYWHERE = ("not in the context", "cannot answer", "can't answer", "unable to answer")


class Answerer:
    """Writes an answer grounded in the given chunks, or refuses."""

    def __init__(
        self,
        provider: LLMProvider,
        max_context_chunks: int = 5,
        max_context_chars: int = 6000,
        refusal_text: str = DEFAULT_REFUSAL,
        min_support: float = 0.0,
    ) -> None:
        if max_context_chunks < 1 or max_context_chars < 1:
            raise ValueError("max_context_chunks and max_context_chars must be positive")
        self._provider = provider
        self._max_chunks = max_context_chunks
        self._max_chars = max_context_chars
        self._refusal_text = refusal_text
        self._min_support = min_support

    def answer(
        self,
        question: str,
        chunks: Sequence[ScoredChunk],
        history: Sequence[HistoryTurn],
        max_tokens: int,
    ) -> Answer:
        """The answer; refused (and no LLM call) when there are no chunks.

        chunks are taken best first, as given. Raises InvalidArgument on an empty
        question and the provider's errors (e.g. Unavailable) as they are.
        """
        question = _checked(question, max_tokens)
        context = self._select(chunks)
        if not context:
            return self._refusal()
        raw = self._provider.complete(self._prompt(question, context, history), max_tokens)
        return self._finish(raw, question, context)

    def stream(
        self,
        question: str,
        chunks: Sequence[ScoredChunk],
        history: Sequence[HistoryTurn],
        max_tokens: int,
    ) -> Iterator[str | Answer]:
        """Text deltas as the model writes them, then the final Answer.

        The deltas are for showing progress; the Answer is authoritative (its text
        is cleaned, its markers renumbered, or it is the refusal). Validates eagerly.
        """
        question = _checked(question, max_tokens)
        context = self._select(chunks)
        if not context:
            refusal = self._refusal()
            return iter((refusal.text, refusal))
        prompt = self._prompt(question, context, history)
        return self._stream(prompt, max_tokens, question, context)

    def _stream(
        self, prompt: Prompt, max_tokens: int, question: str,
        context: list[tuple[ScoredChunk, str]],
    ) -> Iterator[str | Answer]:
        parts: list[str] = []
        started = False
        for delta in self._provider.stream(prompt, max_tokens):
            parts.append(delta)
            if not started:  # the answer is trimmed; so is what the user sees first
                delta = delta.lstrip()
                started = bool(delta)
            if delta:
                yield delta
        yield self._finish("".join(parts), question, context)

    def _select(self, chunks: Sequence[ScoredChunk]) -> list[tuple[ScoredChunk, str]]:
        """Up to max_context_chunks non-empty chunks, their texts within max_context_chars."""
        budget = self._max_chars
        selected: list[tuple[ScoredChunk, str]] = []
        for chunk in chunks:
            if len(selected) == self._max_chunks or budget <= 0:
                break
            text = " ".join(chunk.text.split())
            if not text:
                continue
            if len(text) > budget:
                if selected and budget < _MIN_CLIPPED_CHUNK_CHARS:
                    break
                text = _clip(text, budget)
            selected.append((chunk, text))
            budget -= len(text)
        return selected

    def _prompt(
        self,
        question: str,
        context: list[tuple[ScoredChunk, str]],
        history: Sequence[HistoryTurn],
    ) -> Prompt:
        passages = "\n".join(
            f"[{n}] {' '.join(chunk.title.split()) or 'Untitled'}: {text}"
            for n, (chunk, text) in enumerate(context, start=1)
        )
        turns = _recent_turns(history)
        conversation = ""
        if turns:
            lines = [f"{'User' if role == 'user' else 'Assistant'}: {text}" for role, text in turns]
            conversation = _HISTORY_HEADER + "\n" + "\n".join(lines) + "\n\n"
        request = f"Context:\n{passages}\n\nQuestion: {question}"
        return Prompt(
            system=_SYSTEM,
            messages=(*turns, ("user", request)),
            completion=f"{_COMPLETION_INSTRUCTIONS}{conversation}{request}\nAnswer:",
            stop=STOP,
            completion_stop=COMPLETION_STOP,
        )

    def _finish(
        self, raw: str, question: str, context: list[tuple[ScoredChunk, str]]
    ) -> Answer:
        """Answer from the model's text: citations best supported first, markers
        renumbered to match (see citations.py), or the refusal.

        Citations are every passage the answer was generated from, so [k] in the text
        is citations[k-1]. An explicit "I don't know", or (with min_support) an answer
        whose key terms no passage contains, is a refusal; an empty or marker-only
        output still returns the passages.
        """
        text = _CUT_MARKER.sub("", _FILLER.sub("", raw.strip()))
        cited = cited_numbers(text, len(context))
        plain = strip_markers(text)
        if plain and _is_refusal(plain):
            logger.info("model declined to answer from %d chunks", len(context))
            return self._refusal()
        passages = [passage for _, passage in context]
        order, scores = order_by_support(text if plain else "", question, passages, cited)
        best = max(score.coverage for score in scores)
        if plain and best < self._min_support:
            logger.info("answer unsupported by its %d passages (best %.2f < %.2f)",
                        len(context), best, self._min_support)
            return self._refusal()
        mapping = {old + 1: new for new, old in enumerate(order, start=1)}
        text = renumber(text, mapping) if plain else NO_ANSWER_TEXT
        citations = tuple(context[i][0] for i in order)
        logger.info("answered from %d chunks, marking %d", len(context), len(cited))
        return Answer(text=text, citations=citations, model=self._provider.model_name,
                      renumbered=mapping)

    def _refusal(self) -> Answer:
        return Answer(text=self._refusal_text, refused=True, model=self._provider.model_name)


def _checked(question: str, max_tokens: int) -> str:
    question = " ".join(question.split())
    if not question:
        raise InvalidArgument("The question is empty.", field="question")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidArgument(
            f"The question is longer than {MAX_QUESTION_CHARS} characters.", field="question"
        )
    if max_tokens < 1:
        raise InvalidArgument("max_tokens must be at least 1.", field="max_tokens")
    return question


def _clip(text: str, limit: int) -> str:
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip() + "…"


def _recent_turns(history: Sequence[HistoryTurn]) -> tuple[tuple[str, str], ...]:
    """The last few user/assistant turns, clipped, without their old [n] markers
    (those pointed at another prompt's sources)."""
    turns = []
    for turn in history[-MAX_HISTORY_TURNS:]:
        text = " ".join(strip_markers(turn.content).split())
        if turn.role in ("user", "assistant") and text:
            if len(text) > MAX_HISTORY_TURN_CHARS:
                text = _clip(text, MAX_HISTORY_TURN_CHARS)
            turns.append((turn.role, text))
    return tuple(turns)


def _is_refusal(text: str) -> bool:
    """True when the model's text is empty or says it cannot answer."""
    plain = " ".join(text.lower().replace("’", "'").split()).strip(" .!\"'")
    if not plain:
        return True
    return bool(_REFUSAL_START.match(plain)) or any(p in plain for p in _REFUSAL_ANYWHERE)
