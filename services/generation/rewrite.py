"""Follow-up questions ("And who was his son?") rewritten into standalone search queries.

With a capable (chat, OpenAI-compatible) model the LLM rewrites the question from
the conversation; otherwise, or when the LLM fails or answers nothing, a
deterministic rule appends the key terms of the previous exchange to a question
that refers back to it (a pronoun, "and ...", "what about ...", or too few terms
of its own to search with).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from services.common.errors import InvalidArgument
from services.common.types import HistoryTurn
from services.generation.citations import strip_markers, terms
from services.generation.providers.base import LLMProvider, Prompt

logger = logging.getLogger(__name__)

MAX_QUERY_CHARS = 1000
_REFERRING = frozenset(
    "he him his himself she her hers herself it its itself they them their theirs "
    "themselves this that these those there then former latter".split()
)
_FOLLOW_UP_START = re.compile(r"^(and|also|what about|how about|but|so)\b", re.IGNORECASE)
_MIN_OWN_TERMS = 2
_MAX_ADDED_TERMS = 12
_SYSTEM = (
    "Rewrite the user's last question as one standalone search query that can be "
    "understood without the conversation: replace pronouns and references with the "
    "names they stand for. Reply with the query only, on one line. If the question "
    "already stands alone, repeat it unchanged."
)


@dataclass(frozen=True)
class Rewrite:
    """A search query for a question; method is "llm", "heuristic" or "none"."""

    query: str
    method: str

    @property
    def rewritten(self) -> bool:
        return self.method != "none"


def needs_context(question: str) -> bool:
    """True when the question refers back to the conversation."""
    words = re.findall(r"[a-z']+", question.lower())
    return (
        any(w in _REFERRING for w in words)
        or bool(_FOLLOW_UP_START.match(question.strip()))
        or len(terms(question)) < _MIN_OWN_TERMS
    )


def heuristic_rewrite(question: str, history: Sequence[HistoryTurn]) -> Rewrite:
    """The question plus the previous exchange's key terms it lacks, when it needs them."""
    question = " ".join(question.split())
    previous = [t for t in history if t.role in ("user", "assistant") and t.content.strip()]
    if not previous or not needs_context(question):
        return Rewrite(question, "none")
    last_user = next((t for t in reversed(previous) if t.role == "user"), None)
    last_answer = previous[-1] if previous[-1].role == "assistant" else None
    own = set(terms(question))
    added: list[str] = []
    for turn in (last_user, last_answer):
        for term in terms(strip_markers(turn.content)) if turn else ():
            if term not in own and term not in added:
                added.append(term)
    if not added:
        return Rewrite(question, "none")
    return Rewrite(f"{question} {' '.join(added[:_MAX_ADDED_TERMS])}", "heuristic")


class QueryRewriter:
    """Rewrites follow-ups; `llm` is None for models too small to do it well."""

    def __init__(self, llm: LLMProvider | None, max_tokens: int = 64) -> None:
        self._llm = llm
        self._max_tokens = max_tokens

    def rewrite(self, question: str, history: Sequence[HistoryTurn]) -> Rewrite:
        """The standalone query. Raises InvalidArgument on an empty question."""
        question = " ".join(question.split())
        if not question:
            raise InvalidArgument("The question is empty.", field="question")
        if len(question) > MAX_QUERY_CHARS:
            raise InvalidArgument(
                f"The question is longer than {MAX_QUERY_CHARS} characters.", field="question"
            )
        fallback = heuristic_rewrite(question, history)
        if self._llm is None or not any(t.content.strip() for t in history):
            return fallback
        try:
            text = self._llm.complete(self._prompt(question, history), self._max_tokens)
        except Exception as exc:  # noqa: BLE001 - the rule still gives a usable query
            logger.warning("LLM query rewrite failed (%s); using the rule", type(exc).__name__)
            return fallback
        query = " ".join(text.strip().strip('"').split())[:MAX_QUERY_CHARS]
        if not query:
            return fallback
        return Rewrite(query, "none" if query == question else "llm")

    @staticmethod
    def _prompt(question: str, history: Sequence[HistoryTurn]) -> Prompt:
        turns = tuple(
            (t.role, strip_markers(t.content)[:500])
            for t in history[-6:] if t.role in ("user", "assistant") and t.content.strip()
        )
        request = f"Question to rewrite: {question}"
        lines = "\n".join(f"{role}: {text}" for role, text in turns)
        return Prompt(
            system=_SYSTEM,
            messages=(*turns, ("user", request)),
            completion=f"{_SYSTEM}\n\n{lines}\n{request}\nQuery:",
            stop=("\n",),
        )
