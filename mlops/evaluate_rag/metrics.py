"""IR metrics with trec_eval / BEIR (pytrec_eval) definitions."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

Qrels = dict[str, dict[str, int]]  # query id -> doc id -> relevance grade
Run = dict[str, dict[str, float]]  # query id -> doc id -> score (higher is better)


def rank(scores: dict[str, float]) -> list[str]:
    """Doc ids by score, best first; ties by doc id descending, as trec_eval orders them."""
    return [doc for doc, _ in sorted(scores.items(), key=lambda i: (-i[1], _desc(i[0])))]


def _desc(doc_id: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in doc_id) + (1,)


def ndcg_at_k(ranking: Sequence[str], rels: dict[str, int], k: int) -> float:
    """trec_eval ndcg_cut: linear gain (the grade), discount log2(rank + 1)."""
    ideal = sorted((g for g in rels.values() if g > 0), reverse=True)[:k]
    if not ideal:
        return 0.0
    dcg = sum(rels.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:k])
              if rels.get(doc, 0) > 0)
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg


def recall_at_k(ranking: Sequence[str], rels: dict[str, int], k: int) -> float:
    relevant = {d for d, g in rels.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def mrr_at_k(ranking: Sequence[str], rels: dict[str, int], k: int) -> float:
    for i, doc in enumerate(ranking[:k], start=1):
        if rels.get(doc, 0) > 0:
            return 1.0 / i
    return 0.0


def per_query(
    qrels: Qrels, run: Run, ndcg_k: Sequence[int] = (10,), recall_k: Sequence[int] = (10, 100),
    mrr_k: Sequence[int] = (10,),
) -> dict[str, dict[str, float]]:
    """Metrics of every judged query with a relevant doc; a query missing from run scores 0."""
    out: dict[str, dict[str, float]] = {}
    for qid, rels in qrels.items():
        if not any(g > 0 for g in rels.values()):
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
    """Mean of each metric over the judged queries (trec_eval -c semantics)."""
    rows = per_query(qrels, run, ndcg_k, recall_k, mrr_k)
    keys = [f"ndcg@{k}" for k in ndcg_k] + [f"recall@{k}" for k in recall_k] + [
        f"mrr@{k}" for k in mrr_k]
    if not rows:
        return dict.fromkeys(keys, 0.0)
    return {key: sum(r[key] for r in rows.values()) / len(rows) for key in keys}


def best_per_document(hits: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Each document's score is the best of its chunks' scores."""
    best: dict[str, float] = {}
    for doc, score in hits:
        if doc not in best or score > best[doc]:
            best[doc] = score
    return best
