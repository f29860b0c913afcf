"""Refusal thresholds on a fixture, the follow-up set builder and the score curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops.answer_checks.retrieval_checks import (
    follow_up_queries,
    follow_ups,
    precision_by_half,
    threshold_curve,
)
from mlops.evaluate_rag.answers_eval import GoldAnswer
from services.common.types import ScoredChunk
from services.generation.answering import Answerer
from services.generation.config import GenerationSettings
from tests.unit.generation.test_answering import ScriptedProvider

CASES = [json.loads(line) for line in
         (Path(__file__).parents[2] / "fixtures/refusal/cases.jsonl").read_text().splitlines()]


def rates(min_support: float) -> tuple[float, float]:
    """(refusal rate on unanswerable, false-refusal rate on answerable) over the fixture."""
    refused: dict[bool, list[bool]] = {True: [], False: []}
    for case in CASES:
        chunks = [ScoredChunk(f"c{n}", f"d{n}", "T", "s", text, 0, 0.5)
                  for n, text in enumerate(case["passages"])]
        answerer = Answerer(ScriptedProvider(case["output"]), min_support=min_support)
        result = answerer.answer(case["question"], chunks, [], 32)
        refused[case["answerable"]].append(result.refused)
    return (sum(refused[False]) / len(refused[False]), sum(refused[True]) / len(refused[True]))


@pytest.mark.parametrize(("min_support", "refusal", "false_refusal"), [
    (0.0, 0.25, 0.0),   # only the model's own "I don't know"
    (0.5, 1.0, 0.0),    # answers no passage supports are refused too
    (1.0, 1.0, 0.25),   # "of Wessex" is in no passage
])
def test_refusal_and_false_refusal_move_together_with_the_threshold(
    min_support: float, refusal: float, false_refusal: float
) -> None:
    assert rates(min_support) == (refusal, false_refusal)


def test_the_default_operating_point_is_a_valid_threshold() -> None:
    default = GenerationSettings.model_fields["min_answer_support"].default
    assert 0.0 <= default <= 1.0
    assert rates(default)[1] == 0.0  # the default never refuses a supported answer


def gold(qid: str, question: str, passage: str, answers: tuple[str, ...] = ("x",)) -> GoldAnswer:
    return GoldAnswer(qid, question, answers, not answers, passage)


def test_follow_ups_replace_shared_names_with_pronouns() -> None:
    items = [
        gold("1", "Who was the duke at Hastings?", "p1", ("William",)),
        gold("2", "Who was William's son at Hastings in England?", "p1"),
        gold("3", "Where is Rome?", "p2"),
        gold("4", "What did Rome build?", "p3"),  # another passage: no pair
    ]
    (pair,) = follow_ups(items)
    assert pair.original == "Who was William's son at Hastings in England?"
    assert pair.question.question == "Who was its son at they in England?"
    queries = follow_up_queries([pair])
    assert queries["as_asked"] == [(pair.question.question, "p1")]
    assert "hastings" in queries["rewritten"][0][0] and "william" in queries["rewritten"][0][0]


def test_threshold_curve_counts_both_kinds() -> None:
    (point,) = threshold_curve([0.1, 0.5, 0.2, 0.6], [True, True, False, False], [0.3])
    assert point == {"threshold": 0.3, "refusal_rate": 0.5, "false_refusal_rate": 0.5}


def test_precision_at_1_is_reported_per_half_of_the_answerable_questions() -> None:
    items = [gold(str(i), f"q{i}", f"p{i}") for i in range(4)]
    items.append(gold("4", "q4", "p4", ()))  # unanswerable: only in "all"

    def search(question: str) -> list[ScoredChunk]:
        i = int(question[1:])
        found = f"p{i}" if i in (0, 1, 4) else "elsewhere"  # right for 0, 1 and 4
        return [ScoredChunk("c", found, "T", "s", "text", 0, 1.0)]

    assert precision_by_half(search, items) == {
        "answerable": 0.5, "all": 0.6, "answerable_even": 0.5, "answerable_odd": 0.5}
    assert precision_by_half(lambda q: [], items)["all"] == 0.0
