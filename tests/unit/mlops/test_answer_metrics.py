"""SQuAD 2.0 answer metrics and refusal rates."""

from __future__ import annotations

import pytest

from mlops.evaluate_rag.answer_metrics import (
    AnswerRecord,
    exact_match,
    normalize_answer,
    summarize,
    token_f1,
)


def test_normalisation_drops_case_punctuation_and_articles() -> None:
    assert normalize_answer("The  Normans, of France!") == "normans of france"
    assert normalize_answer("An apple a day") == "apple day"


def test_exact_match_takes_the_best_gold() -> None:
    assert exact_match("the 10th century.", ["in the 10th century", "10th century"]) == 1.0
    assert exact_match("10th", ["10th century"]) == 0.0


def test_token_f1_by_hand() -> None:
    # prediction "normans of normandy" vs gold "the normans": common = {normans} ->
    # precision 1/3, recall 1/1, F1 = 2 * (1/3) / (4/3) = 0.5
    assert token_f1("normans of normandy", ["the normans"]) == pytest.approx(0.5)
    assert token_f1("Rollo", ["Rollo", "duke Rollo"]) == 1.0
    assert token_f1("", ["Rollo"]) == 0.0
    assert token_f1("the", ["a"]) == 1.0  # both empty after normalisation


def test_summary_scores_answerable_and_unanswerable_apart() -> None:
    records = [
        AnswerRecord("1", "France", ("France",), False, False),        # EM 1, F1 1
        AnswerRecord("2", "northern France", ("France",), False, False),  # EM 0, F1 2/3
        AnswerRecord("3", "", ("Rollo",), False, True),                # refused: 0, 0
        AnswerRecord("4", "", (), True, True),                          # correct refusal
        AnswerRecord("5", "Paris", (), True, False),                    # answered anyway
    ]
    summary = summarize(records)
    assert summary["exact_match"] == pytest.approx(1 / 3)
    assert summary["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert summary["refusal_rate"] == pytest.approx(0.5)
    assert summary["false_refusal_rate"] == pytest.approx(1 / 3)
    assert (summary["answerable"], summary["unanswerable"]) == (3, 2)
    assert summarize([])["f1"] == 0.0
