"""What both evaluation tasks need: a loaded dataset indexed into a store, and a retriever."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from mlops.evaluate_rag.beir import BeirDataset
from mlops.evaluate_rag.indexing import IndexReport, index_corpus, open_store
from mlops.splits import load_split
from services.common.embedding_cache import CachedEmbeddings
from services.common.embeddings import build_embeddings
from services.ingest.chunking import TokenChunker
from services.ingest.pipeline import IndexingPipeline
from services.retrieval.config import RetrievalSettings
from services.retrieval.rerank import build_reranker
from services.retrieval.search import Retriever, SearchPolicy


@dataclass
class EvalContext:
    dataset: BeirDataset
    retriever: Retriever
    index: IndexReport
    store_location: str
    embedding_model: str
    params: dict[str, object]


def evaluation_policy(
    base: SearchPolicy, args: argparse.Namespace, depth: int, thresholds: bool
) -> SearchPolicy:
    """The service's policy, deep enough for `depth` chunks; without thresholds unless
    `thresholds` (rankings are scored whole, answers as the service would give them)."""
    if not thresholds:
        base = replace(base, dense_min_score=-math.inf, keyword_min_score=0.0,
                       hybrid_min_score=0.0, rerank_min_score=-math.inf)
    return replace(
        base,
        default_mode=args.mode,
        max_top_k=max(base.max_top_k, depth),
        rrf_k=args.rrf_k if args.rrf_k is not None else base.rrf_k,
        dense_weight=args.dense_weight if args.dense_weight is not None else base.dense_weight,
        keyword_weight=(args.keyword_weight if args.keyword_weight is not None
                        else base.keyword_weight),
        dense_depth=max(base.dense_depth, depth),
        keyword_depth=max(base.keyword_depth, depth),
        rerank_depth=args.rerank_depth or base.rerank_depth,
    )


@contextmanager
def prepared(
    args: argparse.Namespace, depth: int, thresholds: bool = False
) -> Iterator[EvalContext]:
    """Load the dataset, index its corpus (resuming), and build the retriever."""
    dataset = load_split(args.dataset, args.split)
    service = RetrievalSettings()
    args.mode = args.mode or service.search_mode
    work_dir = Path(args.work_dir or Path("data/eval") / Path(args.dataset).resolve().name)
    model_path = getattr(args, "embedding_model", "") or service.embedding_model_path or None
    inner = build_embeddings(service.embedding_provider, model_path, service.embedding_device,
                             service.embedding_precision)
    cache_file = "embeddings.sqlite3"
    if getattr(args, "embedding_model", ""):  # its own namespace: index and cache
        namespace = re.sub(r"[^\w.-]", "_", inner.model_id)
        work_dir, cache_file = work_dir / f"model-{namespace}", f"embeddings-{namespace}.sqlite3"
    embeddings = CachedEmbeddings(inner, Path(args.cache_dir) / cache_file)
    backend = args.backend or service.vector_backend
    with open_store(backend, work_dir, args.database_url, embeddings.dimension,
                    service.bm25_k1, service.bm25_b) as (store, location):
        chunker = TokenChunker.for_embeddings(embeddings, args.chunk_tokens, args.chunk_overlap)
        pipeline = IndexingPipeline(embeddings, chunker, store)
        report = index_corpus(pipeline, dataset.corpus, work_dir / f"{backend}-manifest.json",
                              source=f"beir:{work_dir.name}", progress=not args.no_progress)
        reranker = build_reranker(args.reranker or service.reranker, embeddings=embeddings,
                                  model_path=args.reranker_model_path
                                  or service.reranker_model_path,
                                  device=service.embedding_device)
        policy = evaluation_policy(service.search_policy(), args, depth, thresholds)
        params: dict[str, object] = {
            "dataset": str(args.dataset), "split": args.split, "mode": args.mode,
            "backend": backend, "embedding_model": embeddings.model_name,
            "embedding_model_id": embeddings.model_id,
            "chunk_tokens": args.chunk_tokens, "chunk_overlap": args.chunk_overlap,
            "rrf_k": policy.rrf_k, "dense_weight": policy.dense_weight,
            "keyword_weight": policy.keyword_weight, "dense_depth": policy.dense_depth,
            "keyword_depth": policy.keyword_depth, "bm25_k1": service.bm25_k1,
            "bm25_b": service.bm25_b, "reranker": reranker.name if reranker else "none",
            "rerank_depth": policy.rerank_depth, "thresholds": thresholds,
        }
        try:
            yield EvalContext(dataset, Retriever(embeddings, store, policy, reranker), report,
                              location, embeddings.model_name, params)
        finally:
            embeddings.close()
