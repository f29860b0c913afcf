"""Score serving configurations on a query split, with one cached index per chunking.

One embedded PostgreSQL serves every chunking, each in a database of its own; a
chunking is indexed (resumably, through the ingest pipeline and the shared embedding
cache) the first time a configuration asks for it, and kept open after.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, cast

import numpy as np
from tqdm import tqdm

from mlops.evaluate_rag.beir import BeirDataset
from mlops.evaluate_rag.indexing import IndexReport, index_corpus, open_store
from mlops.evaluate_rag.metrics import best_per_document, ndcg_at_k, rank
from mlops.evaluate_rag.retrieval_eval import CHUNKS_PER_DOCUMENT
from mlops.registry.config import retrieval_settings
from services.common.embedding_cache import CachedEmbeddings
from services.common.embeddings import EmbeddingProvider, build_embeddings
from services.common.vectorstore.base import VectorStore
from services.ingest.chunking import TokenChunker
from services.ingest.pipeline import IndexingPipeline
from services.retrieval.config import RetrievalSettings
from services.retrieval.rerank import build_reranker
from services.retrieval.search import Retriever

logger = logging.getLogger(__name__)

TOP_K = 10  # nDCG@10


@functools.lru_cache(maxsize=2)
def _model(provider: str, path: str, device: str, precision: str) -> EmbeddingProvider:
    """The embedding model, loaded once per process (promotion scores two datasets)."""
    return build_embeddings(provider, path or None, device, precision)


class _QueryMemo:
    """The embeddings, with query vectors remembered across configurations."""

    def __init__(self, inner: EmbeddingProvider) -> None:
        self._inner = inner
        self._memo: dict[str, np.ndarray] = {}

    def embed_query(self, text: str) -> np.ndarray:
        if text not in self._memo:
            self._memo[text] = self._inner.embed_query(text)
        return self._memo[text]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Harness:
    """Scores configurations (dicts of serving settings) on `dataset`'s queries."""

    def __init__(self, dataset: BeirDataset, work_dir: Path, cache_dir: Path,
                 progress: bool = True, namespace: str = "chunks") -> None:
        """`namespace` names this corpus's databases and manifests in `work_dir`, so
        two corpora can share its PostgreSQL (one after the other)."""
        self.dataset = dataset
        self._work_dir = work_dir
        self._namespace = namespace
        self._progress = progress
        self._stack = ExitStack()
        service = RetrievalSettings()
        self._service = service
        inner = _model(service.embedding_provider, service.embedding_model_path,
                       service.embedding_device, service.embedding_precision)
        self._cached = CachedEmbeddings(inner, cache_dir / "embeddings.sqlite3")
        self._stack.callback(self._cached.close)
        self.embeddings = cast(EmbeddingProvider, _QueryMemo(self._cached))
        self._server: Any = None
        self._stores: dict[tuple[int, int], VectorStore] = {}
        self.reports: dict[tuple[int, int], IndexReport] = {}

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()

    def store(self, tokens: int, overlap: int) -> VectorStore:
        """The store holding the corpus under this chunking (indexed on first use)."""
        key = (tokens, overlap)
        if key in self._stores:
            return self._stores[key]
        if self._server is None:
            from devstack.postgres import start_postgres  # deferred: only when indexing

            self._server = start_postgres(self._work_dir / "postgres")
            self._stack.callback(self._server.stop)
        dsn = self._server.create_database(f"{self._namespace}_{tokens}_{overlap}")
        store, _ = self._stack.enter_context(open_store(
            "pgvector", self._work_dir, dsn, self._cached.dimension,
            self._service.bm25_k1, self._service.bm25_b))
        chunker = TokenChunker.for_embeddings(self._cached, tokens, overlap)
        pipeline = IndexingPipeline(self._cached, chunker, store)
        prefix = "" if self._namespace == "chunks" else f"{self._namespace}-"
        report = index_corpus(pipeline, self.dataset.corpus,
                              self._work_dir / f"{prefix}manifest-{tokens}-{overlap}.json",
                              source="beir:tune", progress=self._progress)
        logger.info("chunking %s/%s: %s chunks, %s re-indexed", tokens, overlap,
                    report.chunks, report.indexed)
        self._stores[key] = store
        self.reports[key] = report
        return store

    def retriever(self, settings: dict[str, Any]) -> tuple[Retriever, str]:
        """The retriever `settings` describe, and its search mode."""
        service = retrieval_settings(settings)
        store = self.store(int(settings["chunk_tokens"]), int(settings["chunk_overlap_tokens"]))
        reranker = build_reranker(service.reranker, embeddings=self.embeddings,
                                  model_path=service.reranker_model_path,
                                  device=service.embedding_device)
        return Retriever(self.embeddings, store, service.search_policy(), reranker), \
            service.search_mode

    def ndcg(
        self, settings: dict[str, Any], query_ids: Sequence[str], batches: int = 1,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> dict[str, float]:
        """Per-query nDCG@10 under `settings`, as the service would rank (thresholds on).

        After each of `batches` slices, `on_batch(step, mean so far)` may raise to stop.
        """
        retriever, mode = self.retriever(settings)
        scores: dict[str, float] = {}
        size = max(1, -(-len(query_ids) // max(1, batches)))
        bar = tqdm(total=len(query_ids), desc="ranking", unit="query", leave=False,
                   disable=not self._progress)
        for step, start in enumerate(range(0, len(query_ids), size)):
            for qid in query_ids[start:start + size]:
                bar.update()
                result = retriever.search(self.dataset.queries[qid],
                                          top_k=TOP_K * CHUNKS_PER_DOCUMENT, mode=mode)
                best = best_per_document((c.document_id, c.score) for c in result.chunks)
                scores[qid] = ndcg_at_k(rank(best)[:TOP_K], self.dataset.qrels[qid], TOP_K)
            if on_batch is not None:
                on_batch(step, float(np.mean(list(scores.values()))))
        bar.close()
        return scores
