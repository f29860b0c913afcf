"""A fast in-memory dense evaluation: documents ranked by their best chunk's cosine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops.evaluate_rag.metrics import Run, best_per_document, evaluate, rank
from mlops.finetune_embeddings.data import ChunkedCorpus, top_chunks

TOP_K = 100  # documents ranked per query, as evaluate_rag does
CHUNKS_PER_DOCUMENT = 2


@dataclass(frozen=True)
class DevPool:
    """The chunks dev queries are ranked against: their relevant documents' chunks, the
    base retriever's top `depth` chunks for each, and `extra` random chunks.

    Re-encoding a pool instead of the whole corpus keeps each epoch's evaluation to a
    minute; the pool is fixed, so epochs compare fairly (final figures use evaluate_rag).
    """

    indices: np.ndarray


def dev_pool(
    qrels: Mapping[str, Mapping[str, int]], corpus: ChunkedCorpus, query_vectors: np.ndarray,
    chunk_vectors: np.ndarray, depth: int, extra: int, seed: int,
) -> DevPool:
    """The pool for queries in `qrels` order (rows of `query_vectors`); depth 0: everything."""
    total = len(corpus.texts)
    if depth <= 0:
        return DevPool(np.arange(total))
    relevant = {d for judged in qrels.values() for d, grade in judged.items() if grade > 0}
    chosen = {i for i, doc in enumerate(corpus.doc_ids) if doc in relevant}
    for row in range(len(qrels)):
        chosen.update(int(i) for i in top_chunks(chunk_vectors @ query_vectors[row], depth))
    rng = np.random.default_rng(seed)
    chosen.update(int(i) for i in rng.choice(total, size=min(extra, total), replace=False))
    return DevPool(np.asarray(sorted(chosen)))


def rank_run(
    qids: list[str], query_vectors: np.ndarray, chunk_vectors: np.ndarray, doc_ids: list[str]
) -> Run:
    """Each query's top documents, a document scoring as its best chunk."""
    run: Run = {}
    for row, qid in enumerate(qids):
        scores = chunk_vectors @ query_vectors[row]
        top = top_chunks(scores, TOP_K * CHUNKS_PER_DOCUMENT)
        best = best_per_document((doc_ids[int(i)], float(scores[i])) for i in top)
        run[qid] = {doc: best[doc] for doc in rank(best)[:TOP_K]}
    return run


def encode(model: Any, texts: list[str], batch_size: int, progress: bool = False) -> np.ndarray:
    """Unit-length float32 rows, the way the service embeds."""
    vectors = model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                           normalize_embeddings=True, show_progress_bar=progress)
    return np.asarray(vectors, dtype=np.float32)


def pool_metrics(
    qrels: Mapping[str, Mapping[str, int]], query_vectors: np.ndarray,
    pool_vectors: np.ndarray, pool: DevPool, corpus: ChunkedCorpus,
) -> dict[str, float]:
    """nDCG@10, Recall@10/100 and MRR@10 of the dev queries over the pool."""
    doc_ids = [corpus.doc_ids[int(i)] for i in pool.indices]
    run = rank_run(list(qrels), query_vectors, pool_vectors, doc_ids)
    return evaluate({q: dict(j) for q, j in qrels.items()}, run)
