"""IR metrics with the trec_eval / BEIR (pytrec_eval) definitions.

A document is relevant when its grade is > 0. Every metric of a query with no relevant
document is 0.0; `evaluate` leaves such queries out of the mean, and a judged query that
is missing from the run scores 0 (trec_eval -c).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

Qrels = dict[str, dict[str, int]]  # query id -> doc id -> relevance grade
Run = dict[str, dict[str, float]]  # query id -> doc id -> score (higher is better)


def rank(scores: dict[str, float]) -> list[str]:
    """Doc ids by score, best first; ties by doc id in descending order, as trec_eval."""
    by_id_desc = sorted(scores, reverse=True)
    # sorted() is stable (reverse=True too), so equal scores keep the descending id order.
    return sorted(by_id_desc, key=scores.__getitem__, reverse=True)


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"cutoff k must be >= 1, got {k}")


def ndcg_at_k(ranking: Sequence[str], rels: dict[str, int], k: int) -> float:
    """trec_eval ndcg_cut: gain = grade, discount log2(rank + 1) with rank from 1.

    IDCG is the DCG of all judged docs with grade > 0 in ideal order, cut at k.
    """
    _check_k(k)
    ideal = sorted((g for g in rels.values() if g > 0), reverse=True)[:k]
    if not ideal:
        return 0.0
    dcg = sum(
        rels[doc] / math.log2(rank_ + 1)
        for rank_, doc in enumerate(ranking[:k], start=1)
        if rels.get(doc, 0) > 0
    )
    idcg = sum(g / math.log2(rank_ + 1) for rank_, g in enumerate(ideal, start=1))
    return dcg / idcg


def recall_at_k(ranking: Sequence[str], rels: dict[str, int], k: int) -> float:
    """|top-k ∩ relevant| / |relevant|; 0.0 when nothing is relevant."""
    _check_k(k)
    relevant = {doc for doc, grade in rels.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def mrr_at_k(ranking: Sequence[str], rels: dict[str, int], k: int) -> float:
    """1 / rank of the first relevant doc within the top k, else 0.0."""
    _check_k(k)
    for rank_, doc in enumerate(ranking[:k], start=1):
        if rels.get(doc, 0) > 0:
            return 1.0 / rank_
    return 0.0


def metric_names(
    ndcg_k: Sequence[int] = (10,), recall_k: Sequence[int] = (10, 100), mrr_k: Sequence[int] = (10,)
) -> list[str]:
    """The keys `evaluate` returns, e.g. ["ndcg@10", "recall@10", "recall@100", "mrr@10"]."""
    return ([f"ndcg@{k}" for k in ndcg_k] + [f"recall@{k}" for k in recall_k]
            + [f"mrr@{k}" for k in mrr_k])


def per_query(
    qrels: Qrels, run: Run, ndcg_k: Sequence[int] = (10,), recall_k: Sequence[int] = (10, 100),
    mrr_k: Sequence[int] = (10,),
) -> dict[str, dict[str, float]]:
    """Metrics of every query in qrels with a relevant doc; a query missing from run scores 0.

    Queries in the run but not in qrels are ignored.
    """
    out: dict[str, dict[str, float]] = {}
    for qid, rels in qrels.items():
        if not any(grade > 0 for grade in rels.values()):
            continue
        ranking = rank(run.get(qid, {}))
        scores = {f"ndcg@{k}": ndcg_at_k(ranking, rels, k) for k in ndcg_k}
        scores.update({f"recall@{k}": recall_at_k(ranking, rels, k) for k in recall_k})
        scores.update({f"mrr@{k}": mrr_at_k(ranking, rels, k) for k in mrr_k})
        out[qid] = scores
    return out


def evaluate(
    qrels: Qrels, run: Run, ndcg_k: Sequence[int] = (10,), recall_k: Sequence[int] = (10, 100),
    mrr_k: Sequence[int] = (10,),
) -> dict[str, float]:
    """Mean of each metric over the queries `per_query` scores; all 0.0 when there are none."""
    rows = per_query(qrels, run, ndcg_k, recall_k, mrr_k)
    keys = metric_names(ndcg_k, recall_k, mrr_k)
    if not rows:
        return dict.fromkeys(keys, 0.0)
    return {key: math.fsum(row[key] for row in rows.values()) / len(rows) for key in keys}


def best_per_document(hits: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Chunk hits (document_id, score), in any order -> each document's best chunk score."""
    best: dict[str, float] = {}
    for doc, score in hits:
        if doc not in best or score > best[doc]:
            best[doc] = score
    return best
