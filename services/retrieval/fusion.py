"""Weighted Reciprocal Rank Fusion of ranked candidate lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from services.common.types import ScoredChunk


def weighted_rrf(
    ranked_lists: Sequence[tuple[Sequence[ScoredChunk], float]],
    rrf_k: float = 60.0,
    score_kind: str = "hybrid",
) -> list[ScoredChunk]:
    """Fuse best-first lists, each with a weight, into one best-first list.

    A chunk's raw fused score is sum(weight / (rrf_k + rank)) over the lists holding it,
    with ranks from 1. It is reported divided by the largest score attainable,
    sum(weight / (rrf_k + 1)), so 1.0 means "ranked first by every list" and scores
    compare across queries. Ties keep the order of the first list that ranked the chunk
    higher, then chunk id.
    """
    if rrf_k < 0:
        raise ValueError(f"rrf_k must not be negative, got {rrf_k}")
    total_weight = sum(weight for _, weight in ranked_lists if weight > 0)
    if total_weight <= 0:
        return []
    best_possible = total_weight / (rrf_k + 1)
    fused: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    chunks: dict[str, ScoredChunk] = {}
    for results, weight in ranked_lists:
        if weight <= 0:
            continue
        for rank, chunk in enumerate(results, start=1):
            fused[chunk.chunk_id] = fused.get(chunk.chunk_id, 0.0) + weight / (rrf_k + rank)
            best_rank[chunk.chunk_id] = min(best_rank.get(chunk.chunk_id, rank), rank)
            chunks.setdefault(chunk.chunk_id, chunk)
    order = sorted(fused, key=lambda cid: (-fused[cid], best_rank[cid], cid))
    return [
        replace(chunks[cid], score=fused[cid] / best_possible, score_kind=score_kind)
        for cid in order
    ]
