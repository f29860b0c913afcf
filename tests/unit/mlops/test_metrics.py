"""IR metrics against hand-computed values (trec_eval / BEIR definitions)."""

from __future__ import annotations

import math

import pytest

from mlops.evaluate_rag.metrics import (
    best_per_document,
    evaluate,
    mrr_at_k,
    ndcg_at_k,
    rank,
    recall_at_k,
)

LOG3 = math.log2(3)


def test_ndcg_uses_linear_gain_and_the_ideal_order_of_all_judged_docs() -> None:
    rels = {"d1": 1, "d2": 2}
    # DCG = 0 (d3) + 1/log2(3) (d1) + 2/log2(4) (d2) = 0.6309 + 1 = 1.6309
    # IDCG = 2/log2(2) + 1/log2(3) = 2.6309
    assert ndcg_at_k(["d3", "d1", "d2"], rels, 10) == pytest.approx((1 / LOG3 + 1) / (2 + 1 / LOG3))
    assert ndcg_at_k(["d2", "d1"], rels, 10) == pytest.approx(1.0)


def test_ndcg_cuts_at_k_on_both_sides() -> None:
    rels = {"a": 1, "b": 1, "c": 1}
    # k=2: DCG = 1/log2(3) (a at rank 2); IDCG = 1 + 1/log2(3) (only two slots)
    assert ndcg_at_k(["x", "a", "b"], rels, 2) == pytest.approx((1 / LOG3) / (1 + 1 / LOG3))
    assert ndcg_at_k(["x", "y"], rels, 2) == 0.0
    assert ndcg_at_k(["a"], {"a": 0}, 10) == 0.0  # nothing relevant: 0, not a division error


def test_recall_counts_relevant_docs_within_k() -> None:
    rels = {"a": 1, "b": 2, "c": 1, "z": 0}
    ranking = ["a", "x", "b", "z"]
    assert recall_at_k(ranking, rels, 2) == pytest.approx(1 / 3)
    assert recall_at_k(ranking, rels, 100) == pytest.approx(2 / 3)  # fewer than 100 results


def test_mrr_is_the_reciprocal_rank_of_the_first_relevant_doc() -> None:
    rels = {"c": 1, "d": 1}
    assert mrr_at_k(["a", "b", "c", "d"], rels, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["a", "b", "c"], rels, 2) == 0.0


def test_ties_are_broken_by_descending_doc_id_like_trec_eval() -> None:
    assert rank({"a": 1.0, "c": 1.0, "b": 2.0, "ab": 1.0}) == ["b", "c", "ab", "a"]
    # So the same scores give the relevant doc rank 1 or rank 2 depending on its id.
    assert mrr_at_k(rank({"b": 0.5, "a": 0.5}), {"b": 1}, 10) == 1.0
    assert mrr_at_k(rank({"b": 0.5, "a": 0.5}), {"a": 1}, 10) == 0.5


def test_evaluate_averages_over_judged_queries_only() -> None:
    qrels = {
        "q1": {"a": 1},
        "q2": {"b": 1},          # missing from the run: counts as 0
        "q3": {"c": 0},          # no relevant doc: left out of the mean
    }
    run = {"q1": {"a": 0.9, "x": 0.1}, "q3": {"c": 1.0}, "q9": {"a": 1.0}}
    metrics = evaluate(qrels, run)
    assert set(metrics) == {"ndcg@10", "recall@10", "recall@100", "mrr@10"}
    assert metrics["ndcg@10"] == pytest.approx(0.5)  # (1 + 0) / 2
    assert metrics["recall@100"] == pytest.approx(0.5)
    assert metrics["mrr@10"] == pytest.approx(0.5)


def test_a_document_scores_its_best_chunk() -> None:
    hits = [("d1", 0.2), ("d2", 0.9), ("d1", 0.7), ("d2", 0.1)]
    assert best_per_document(hits) == {"d1": 0.7, "d2": 0.9}
