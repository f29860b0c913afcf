"""Follow-up questions rewritten into standalone search queries."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidArgument, Unavailable
from services.common.types import HistoryTurn
from services.generation.providers.base import Prompt
from services.generation.rewrite import QueryRewriter, heuristic_rewrite
from tests.unit.generation.test_answering import ScriptedProvider

HISTORY = [
    HistoryTurn("user", "Who was the duke in the battle of Hastings?"),
    HistoryTurn("assistant", "William the Conqueror [1]."),
]


def test_a_pronoun_follow_up_gets_the_previous_exchange_terms() -> None:
    result = heuristic_rewrite("And who was his son?", HISTORY)
    assert result.method == "heuristic" and result.rewritten
    assert result.query.startswith("And who was his son?")
    for term in ("duke", "battle", "hastings", "william", "conqueror"):
        assert term in result.query
    assert "[1]" not in result.query


def test_a_standalone_question_is_left_alone() -> None:
    result = heuristic_rewrite("When did Rollo sign the treaty of Saint-Clair-sur-Epte?", HISTORY)
    assert result.query == "When did Rollo sign the treaty of Saint-Clair-sur-Epte?"
    assert not result.rewritten


def test_without_history_nothing_changes() -> None:
    assert heuristic_rewrite("What was its capital?", []).method == "none"


class Failing(ScriptedProvider):
    def complete(self, prompt: Prompt, max_tokens: int) -> str:
        raise Unavailable("down")


def test_the_llm_rewrites_when_capable_and_the_rule_is_the_fallback() -> None:
    llm = ScriptedProvider(' "Who was the son of William the Conqueror?" ')
    result = QueryRewriter(llm).rewrite("And who was his son?", HISTORY)
    assert (result.query, result.method) == ("Who was the son of William the Conqueror?", "llm")
    assert "William the Conqueror" in llm.prompts[0].completion
    assert llm.prompts[0].messages[-1] == ("user", "Question to rewrite: And who was his son?")
    failed = QueryRewriter(Failing("")).rewrite("And who was his son?", HISTORY)
    assert failed.method == "heuristic" and "hastings" in failed.query
    empty = QueryRewriter(ScriptedProvider("  ")).rewrite("And who was his son?", HISTORY)
    assert empty.method == "heuristic"


def test_the_llm_is_not_asked_without_history_and_empty_questions_are_invalid() -> None:
    llm = ScriptedProvider("unused")
    assert QueryRewriter(llm).rewrite("Who was Rollo?", []).method == "none"
    assert llm.prompts == []
    with pytest.raises(InvalidArgument):
        QueryRewriter(None).rewrite("  ", HISTORY)
