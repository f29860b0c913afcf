"""Retrieval evaluation: rank documents for every query and score them against qrels."""

from __future__ import annotations

import time
from itertools import islice

from tqdm import tqdm

from mlops.evaluate_rag.context import EvalContext
from mlops.evaluate_rag.metrics import Run, best_per_document, evaluate, rank

# Chunks fetched per ranked document: a long document's several chunks must not crowd
# other documents out of the top_k.
CHUNKS_PER_DOCUMENT = 2


def rank_documents(
    ctx: EvalContext, top_k: int, rerank: bool | None, limit: int | None, progress: bool
) -> tuple[Run, float]:
    """Each query's top_k documents (score = best chunk), and the seconds spent."""
    queries = ctx.dataset.queries
    items = list(islice(queries.items(), limit)) if limit else list(queries.items())
    run: Run = {}
    started = time.perf_counter()
    mode = str(ctx.params["mode"])
    for qid, text in tqdm(items, desc=f"querying ({mode})", unit="query",
                          disable=not progress):
        result = ctx.retriever.search(
            text, top_k=top_k * CHUNKS_PER_DOCUMENT, mode=mode, rerank=rerank
        )
        scores = best_per_document((c.document_id, c.score) for c in result.chunks)
        run[qid] = {doc: scores[doc] for doc in rank(scores)[:top_k]}
    return run, time.perf_counter() - started


def index_summary(ctx: EvalContext) -> dict[str, float | int]:
    """What indexing did: documents (re-)indexed, chunk texts embedded (cache misses)."""
    return {"documents": ctx.index.documents, "chunks": ctx.index.chunks,
            "indexed": ctx.index.indexed, "embedded": ctx.index.embedded,
            "index_seconds": round(ctx.index.seconds, 2)}


def evaluate_retrieval(
    ctx: EvalContext, top_k: int, rerank: bool | None, limit: int | None, progress: bool
) -> tuple[dict[str, float | int | str], Run]:
    """The summary (metrics plus mode and query count) and the run itself."""
    run, seconds = rank_documents(ctx, top_k, rerank, limit, progress)
    qrels = {qid: ctx.dataset.qrels[qid] for qid in run}
    metrics = evaluate(qrels, run)
    summary: dict[str, float | int | str] = {
        "mode": str(ctx.params["mode"]),
        "queries": len(run),
        **{key: round(value, 4) for key, value in metrics.items()},
        "reranker": str(ctx.params["reranker"]),
        "query_seconds": round(seconds, 2),
        **index_summary(ctx),
    }
    return summary, run
