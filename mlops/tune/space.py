"""The search space: what a trial may change in the serving settings, and why not more.

Tuned: fusion (rrf_k and the dense:keyword weight ratio), candidate depths, the dense
floor (it removes weak dense candidates *before* fusion, so it moves the fused ranks),
the reranker and its depth, and the chunking. Not tuned: the floors on the final score
(keyword, hybrid, rerank): they can only drop results from a ranking, which nDCG@10 can
never reward; they are refusal knobs, set by the answer checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna

DEPTHS = (20, 50, 100, 200)
RERANKERS = ("none", "embedding", "blend")
RERANK_DEPTHS = (10, 20, 30, 50)


def suggest(
    trial: optuna.Trial, base: dict[str, Any], chunk_tokens: Sequence[int],
    chunk_overlaps: Sequence[int],
) -> dict[str, Any]:
    """`base` with this trial's choices applied (every key a serving setting)."""
    settings = dict(base)
    settings["search_mode"] = "hybrid"
    settings["rrf_k"] = trial.suggest_int("rrf_k", 1, 100, log=True)
    settings["dense_weight"] = trial.suggest_float("dense_weight", 0.25, 4.0, log=True)
    settings["keyword_weight"] = 1.0  # only the ratio matters to the fused ranking
    settings["dense_depth"] = trial.suggest_categorical("dense_depth", DEPTHS)
    settings["keyword_depth"] = trial.suggest_categorical("keyword_depth", DEPTHS)
    settings["default_min_score"] = round(
        trial.suggest_float("default_min_score", -0.1, 0.4, step=0.05), 4)
    settings["reranker"] = trial.suggest_categorical("reranker", RERANKERS)
    if settings["reranker"] != "none":
        settings["rerank_depth"] = trial.suggest_categorical("rerank_depth", RERANK_DEPTHS)
    settings["chunk_tokens"] = trial.suggest_categorical("chunk_tokens", tuple(chunk_tokens))
    settings["chunk_overlap_tokens"] = trial.suggest_categorical(
        "chunk_overlap_tokens", tuple(chunk_overlaps))
    return settings


def baseline_params(base: dict[str, Any]) -> dict[str, Any]:
    """Today's settings as trial parameters, enqueued as trial 0 so the study starts
    from the configuration it must beat."""
    params: dict[str, Any] = {
        "rrf_k": int(round(base["rrf_k"])) or 1,
        "dense_weight": base["dense_weight"] / (base["keyword_weight"] or 1.0),
        "dense_depth": min(DEPTHS, key=lambda d: abs(d - base["dense_depth"])),
        "keyword_depth": min(DEPTHS, key=lambda d: abs(d - base["keyword_depth"])),
        "default_min_score": base["default_min_score"],
        "reranker": base["reranker"] if base["reranker"] in RERANKERS else "none",
        "chunk_tokens": base["chunk_tokens"],
        "chunk_overlap_tokens": base["chunk_overlap_tokens"],
    }
    if params["reranker"] != "none":
        params["rerank_depth"] = min(RERANK_DEPTHS, key=lambda d: abs(d - base["rerank_depth"]))
    return params
