"""IR metrics against hand-computed values (trec_eval / BEIR definitions)."""

from __future__ import annotations

import math

import pytest

from mlops.evaluate_rag.metrics import (
    best_per_document,
    evaluate,
    metric_names,
    mrr_at_k,
    ndcg_at_k,
    per_query,
    rank,
    recall_at_k,
)

LOG2_3 = math.log2(3)  # 1.5849625, so 1/log2(3) = 0.6309298


def test_ndcg_uses_linear_gain_and_the_ideal_order_of_all_judged_docs() -> None:
    rels = {"d1": 1, "d2": 2}
    # DCG  = 0 (d3, rank 1) + 1/log2(3) (d1, rank 2) + 2/log2(4) (d2, rank 3)
    #      = 0.6309298 + 1.0 = 1.6309298
    # IDCG = 2/log2(2) + 1/log2(3) = 2.0 + 0.6309298 = 2.6309298
    # nDCG = 1.6309298 / 2.6309298 = 0.6199062  (2^rel - 1 gains would give 0.5868827)
    assert ndcg_at_k(["d3", "d1", "d2"], rels, 10) == pytest.approx(0.6199062, abs=1e-7)
    assert ndcg_at_k(["d2", "d1"], rels, 10) == pytest.approx(1.0)
    # The ideal order sorts by grade: [d1, d2] is not ideal.
    # DCG = 1/1 + 2/log2(3) = 2.2618595; nDCG = 2.2618595 / 2.6309298 = 0.8597186
    assert ndcg_at_k(["d1", "d2"], rels, 10) == pytest.approx(0.8597186, abs=1e-7)


def test_ndcg_ideal_counts_judged_relevant_docs_that_were_not_retrieved() -> None:
    # DCG = 1/log2(2) = 1; IDCG = 3/log2(2) + 1/log2(3) = 3.6309298; nDCG = 0.2754116
    assert ndcg_at_k(["a"], {"a": 1, "b": 3}, 10) == pytest.approx(0.2754116, abs=1e-7)


def test_ndcg_cuts_at_k_on_both_sides() -> None:
    rels = {"a": 1, "b": 1, "c": 1}
    # k=2: b at rank 3 is beyond k. DCG = 1/log2(3) = 0.6309298 (a at rank 2);
    # IDCG has two slots: 1 + 1/log2(3) = 1.6309298; nDCG = 0.3868528
    assert ndcg_at_k(["x", "a", "b"], rels, 2) == pytest.approx(0.3868528, abs=1e-7)
    # k=3: DCG = 0.6309298 + 1/log2(4) = 1.1309298; IDCG = 1 + 0.6309298 + 0.5 = 2.1309298
    # nDCG = 0.5307213
    assert ndcg_at_k(["x", "a", "b"], rels, 3) == pytest.approx(0.5307213, abs=1e-7)


def test_no_relevant_doc_retrieved_scores_zero() -> None:
    rels = {"a": 1, "b": 2, "z": 0}
    ranking = ["x", "z", "y"]  # z is judged, but grade 0 is not relevant
    assert ndcg_at_k(ranking, rels, 10) == 0.0
    assert recall_at_k(ranking, rels, 10) == 0.0
    assert mrr_at_k(ranking, rels, 10) == 0.0
    assert ndcg_at_k([], rels, 10) == 0.0


def test_a_query_without_relevant_docs_scores_zero_without_dividing_by_zero() -> None:
    assert ndcg_at_k(["a"], {"a": 0}, 10) == 0.0
    assert recall_at_k(["a"], {"a": 0}, 10) == 0.0
    assert mrr_at_k(["a"], {}, 10) == 0.0


def test_recall_counts_relevant_docs_within_k() -> None:
    rels = {"a": 1, "b": 2, "c": 1, "z": 0}  # relevant: a, b, c
    ranking = ["a", "x", "b", "z"]
    assert recall_at_k(ranking, rels, 2) == pytest.approx(1 / 3)  # {a} of 3
    # Only 4 results: recall@100 is over what there is, {a, b} of 3 = 0.6666667
    assert recall_at_k(ranking, rels, 100) == pytest.approx(2 / 3)


def test_mrr_is_the_reciprocal_rank_of_the_first_relevant_doc() -> None:
    rels = {"c": 1, "d": 2}
    # First relevant doc c at rank 3: MRR = 1/3
    assert mrr_at_k(["a", "b", "c", "d"], rels, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["a", "b", "c"], rels, 2) == 0.0  # c is beyond k = 2


def test_a_cutoff_below_one_is_refused() -> None:
    for metric in (ndcg_at_k, recall_at_k, mrr_at_k):
        with pytest.raises(ValueError, match="k must be >= 1"):
            metric(["a"], {"a": 1}, 0)


def test_ties_are_broken_by_descending_doc_id_like_trec_eval() -> None:
    # b has the best score; a, c and ab tie, and go in descending string order c > ab > a.
    assert rank({"a": 1.0, "c": 1.0, "b": 2.0, "ab": 1.0}) == ["b", "c", "ab", "a"]
    # String order, not numeric order: "9" > "10".
    assert rank({"10": 0.5, "9": 0.5, "100": 0.7}) == ["100", "9", "10"]
    # So the same scores rank the relevant doc 1st or 2nd depending on its id.
    assert mrr_at_k(rank({"b": 0.5, "a": 0.5}), {"b": 1}, 10) == 1.0
    assert mrr_at_k(rank({"b": 0.5, "a": 0.5}), {"a": 1}, 10) == 0.5
    assert rank({}) == []


def test_evaluate_averages_over_judged_queries_with_a_relevant_doc() -> None:
    qrels = {
        "q1": {"a": 1, "b": 2},
        "q2": {"b": 1},  # missing from the run: counts as 0
        "q3": {"c": 0},  # no relevant doc: left out of the mean
    }
    run = {
        "q1": {"x": 0.9, "a": 0.5, "b": 0.5},  # the tie puts b before a: [x, b, a]
        "q3": {"c": 1.0},
        "q9": {"a": 1.0},  # not judged: ignored
    }
    # q1: DCG = 2/log2(3) + 1/log2(4) = 1.2618595 + 0.5 = 1.7618595
    #     IDCG = 2/log2(2) + 1/log2(3) = 2.6309298; nDCG = 0.6696718
    #     recall@10 = recall@100 = 2/2 = 1; MRR@10 = 1/2 (b at rank 2)
    # q2: all 0. Means over {q1, q2}:
    metrics = evaluate(qrels, run)
    assert list(metrics) == ["ndcg@10", "recall@10", "recall@100", "mrr@10"]
    assert metrics["ndcg@10"] == pytest.approx(0.6696718 / 2, abs=1e-7)  # 0.3348359
    assert metrics["recall@10"] == pytest.approx(0.5)  # (1 + 0) / 2
    assert metrics["recall@100"] == pytest.approx(0.5)
    assert metrics["mrr@10"] == pytest.approx(0.25)  # (1/2 + 0) / 2

    rows = per_query(qrels, run)
    assert set(rows) == {"q1", "q2"}
    assert rows["q2"] == dict.fromkeys(metric_names(), 0.0)


def test_evaluate_with_other_cutoffs_and_with_nothing_to_score() -> None:
    qrels = {"q1": {"a": 1, "b": 1}}
    run = {"q1": {"b": 0.2, "a": 0.9}}  # [a, b]
    # @1: nDCG = 1/1 = 1; recall = 1/2; MRR = 1
    assert evaluate(qrels, run, ndcg_k=(1,), recall_k=(1,), mrr_k=(1,)) == pytest.approx(
        {"ndcg@1": 1.0, "recall@1": 0.5, "mrr@1": 1.0})
    assert evaluate({"q": {"a": 0}}, run) == dict.fromkeys(metric_names(), 0.0)
    assert evaluate({}, {}) == dict.fromkeys(metric_names(), 0.0)


def test_a_document_scores_its_best_chunk() -> None:
    hits = [("d1", 0.2), ("d2", 0.9), ("d1", 0.7), ("d2", 0.1), ("d3", -1.0)]
    assert best_per_document(hits) == {"d1": 0.7, "d2": 0.9, "d3": -1.0}
    assert best_per_document([]) == {}
