"""SQuAD 2.0 answer metrics and refusal rates, against hand-computed values."""

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
    # Articles only as whole words; punctuation goes first, so "a-team" becomes one word.
    assert normalize_answer("Theatre Anna a-team") == "theatre anna ateam"
    assert normalize_answer(" \t The \n") == ""


def test_exact_match_takes_the_best_gold() -> None:
    assert exact_match("the 10th century.", ["in the 10th century", "10th century"]) == 1.0
    assert exact_match("10th", ["10th century"]) == 0.0
    # No gold answers stands for the gold "" (official script): only an empty answer matches.
    assert exact_match("", []) == 1.0
    assert exact_match("Paris", []) == 0.0


def test_token_f1_by_hand() -> None:
    # "normans of normandy" vs "the normans" -> tokens [normans, of, normandy] vs [normans]:
    # common = 1; precision = 1/3, recall = 1/1; F1 = 2 * (1/3) * 1 / (1/3 + 1) = 0.5
    assert token_f1("normans of normandy", ["the normans"]) == pytest.approx(0.5)
    # Shared tokens are counted with multiplicity, clipped: [x, x, y] vs [x, y, z]:
    # common = min(2,1) + min(1,1) = 2; precision = 2/3, recall = 2/3; F1 = 2/3
    assert token_f1("x x y", ["x y z"]) == pytest.approx(2 / 3)
    # Best over golds: 1.0 against "Rollo" beats 2*(1/1)*(1/2)/(3/2) = 2/3 against "duke Rollo".
    assert token_f1("Rollo", ["duke Rollo", "Rollo"]) == 1.0
    assert token_f1("Rollo", ["duke Rollo"]) == pytest.approx(2 / 3)


def test_token_f1_with_no_tokens_on_a_side() -> None:
    assert token_f1("", ["Rollo"]) == 0.0
    assert token_f1("Rollo", ["the"]) == 0.0
    assert token_f1("the", ["a"]) == 1.0  # both empty after normalisation
    assert token_f1("", []) == 1.0  # no golds: the gold is ""


def test_summary_scores_answerable_and_unanswerable_apart() -> None:
    records = [
        AnswerRecord("1", "France", ("France",), False, False),  # EM 1, F1 1
        # F1: [northern, france] vs [france]: P = 1/2, R = 1; F1 = 2*(1/2)/(3/2) = 2/3
        AnswerRecord("2", "northern France", ("France",), False, False),  # EM 0
        AnswerRecord("3", "Rollo", ("Rollo",), False, True),  # refused: EM 0, F1 0
        AnswerRecord("4", "", (), True, True),  # correct refusal
        AnswerRecord("5", "Paris", (), True, False),  # answered anyway
    ]
    summary = summarize(iter(records))
    assert summary["exact_match"] == pytest.approx(1 / 3)  # (1 + 0 + 0) / 3
    assert summary["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)  # 0.5555556
    assert summary["refusal_rate"] == pytest.approx(1 / 2)  # 1 of 2 unanswerable
    assert summary["false_refusal_rate"] == pytest.approx(1 / 3)  # 1 of 3 answerable
    assert (summary["answerable"], summary["unanswerable"]) == (3, 2)


def test_summary_of_nothing_is_zero() -> None:
    assert summarize([]) == {"exact_match": 0.0, "f1": 0.0, "refusal_rate": 0.0,
                             "false_refusal_rate": 0.0, "answerable": 0, "unanswerable": 0}
    only_impossible = summarize([AnswerRecord("1", "", (), True, True)])
    assert only_impossible["f1"] == 0.0 and only_impossible["refusal_rate"] == 1.0
