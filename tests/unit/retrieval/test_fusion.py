"""Weighted reciprocal rank fusion, checked against hand-computed scores."""

from __future__ import annotations

import pytest

from services.common.types import ScoredChunk
from services.retrieval.fusion import weighted_rrf


def chunks(*ids: str, kind: str = "dense") -> list[ScoredChunk]:
    return [ScoredChunk(i, i.split(":")[0], "", "", f"text {i}", 0, 1.0 / (n + 1), kind)
            for n, i in enumerate(ids)]


def test_equal_weights_reward_agreement() -> None:
    dense = chunks("a", "b", "c")
    keyword = chunks("c", "d", kind="keyword")
    fused = weighted_rrf([(dense, 1.0), (keyword, 1.0)], rrf_k=60)
    # raw: a 1/61, b 1/62, c 1/63 + 1/61, d 1/62; best possible 2/61.
    assert [c.chunk_id for c in fused] == ["c", "a", "b", "d"]
    by_id = {c.chunk_id: c.score for c in fused}
    assert by_id["c"] == pytest.approx((1 / 63 + 1 / 61) / (2 / 61))
    assert by_id["a"] == pytest.approx((1 / 61) / (2 / 61))  # 0.5
    assert by_id["b"] == pytest.approx(by_id["d"])
    assert all(c.score_kind == "hybrid" for c in fused)
    assert fused[0].text == "text c"  # the chunk itself travels with its fused score


def test_first_in_every_list_scores_one() -> None:
    fused = weighted_rrf([(chunks("a", "b"), 2.0), (chunks("a", "c"), 0.5)], rrf_k=10)
    assert fused[0].chunk_id == "a"
    assert fused[0].score == pytest.approx(1.0)


def test_weights_decide_between_the_lists() -> None:
    dense, keyword = chunks("a", "b"), chunks("b", "a")
    # a: 3/(1+1) + 1/(1+2) = 1.833; b: 3/(1+2) + 1/(1+1) = 1.5
    assert [c.chunk_id for c in weighted_rrf([(dense, 3.0), (keyword, 1.0)], rrf_k=1)] == [
        "a", "b"]
    assert [c.chunk_id for c in weighted_rrf([(dense, 1.0), (keyword, 3.0)], rrf_k=1)] == [
        "b", "a"]


def test_a_small_k_favours_top_ranks() -> None:
    # x is 1st in one list only; y is 2nd in both. k=0: x 1/1 = 1 > y 1/2+1/2 = 1 (tie,
    # broken by best rank); k=100: y 2/102 > x 1/101.
    first, second = chunks("x", "y"), chunks("z", "y")
    assert weighted_rrf([(first, 1), (second, 1)], rrf_k=0)[0].chunk_id == "x"
    assert weighted_rrf([(first, 1), (second, 1)], rrf_k=100)[0].chunk_id == "y"


def test_zero_weight_lists_are_ignored_and_empty_input_is_empty() -> None:
    fused = weighted_rrf([(chunks("a"), 1.0), (chunks("b"), 0.0)])
    assert [c.chunk_id for c in fused] == ["a"]
    assert weighted_rrf([([], 1.0), ([], 1.0)]) == []
    assert weighted_rrf([(chunks("a"), 0.0)]) == []
    with pytest.raises(ValueError):
        weighted_rrf([(chunks("a"), 1.0)], rrf_k=-1)
