"""Settings of the retrieval service."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.common.settings import EmbeddingSettings
from services.retrieval.search import SearchPolicy

DEFAULT_PORT = 50051


class RetrievalSettings(EmbeddingSettings):
    """RAGCHAT_* environment variables read by the retrieval service."""

    # The mode a request gets when it names none; chosen by the SciFact evaluation.
    search_mode: Literal["dense", "keyword", "hybrid"] = "hybrid"
    # One thread per forward pass: queries are short and batched, and the other cores
    # serve gRPC and PostgreSQL meanwhile; two threads spinning on busy cores stalled
    # searches for seconds (README "Benchmark: search latency and throughput").
    embedding_threads: int = Field(default=1, ge=0, le=256)
    # 8 concurrent searches (a hybrid one holds two connections): wider model batches;
    # /search under 50 clients served ~1.2x more than with 4 (README, "Benchmark").
    db_pool_max: int = 16
    default_top_k: int = Field(default=5, ge=1)
    max_top_k: int = Field(default=100, ge=1)
    # Cosine similarity below which a chunk is not relevant (dense results, and the
    # dense side of hybrid search).
    default_min_score: float = Field(default=0.25, ge=-1.0, le=1.0)
    keyword_min_score: float = Field(default=0.0, ge=0.0)
    hybrid_min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    rerank_min_score: float = 0.0
    # Weighted Reciprocal Rank Fusion: sum(weight / (rrf_k + rank)).
    rrf_k: float = Field(default=10.0, ge=0.0)
    dense_weight: float = Field(default=1.0, ge=0.0)
    keyword_weight: float = Field(default=1.0, ge=0.0)
    dense_depth: int = Field(default=100, ge=1, le=1000)
    keyword_depth: int = Field(default=100, ge=1, le=1000)
    # "none", "embedding" (cosine under the embedding model), "cross-encoder" or "blend"
    # (best-sentence cosine + IDF keyword share, under the embedding model).
    reranker: Literal["none", "embedding", "cross-encoder", "blend"] = "blend"
    reranker_model_path: str = ""
    rerank_depth: int = Field(default=20, ge=1, le=1000)
    # Whether a search that does not say `rerank` is reranked (the gateway's answer
    # routes always ask; /search and gRPC Search only when this is set or they ask).
    rerank_by_default: bool = False

    def search_workers(self) -> int:
        """Concurrent searches: a hybrid search holds two pooled connections."""
        return max(1, self.db_pool_max // 2)

    def search_policy(self) -> SearchPolicy:
        return SearchPolicy(
            default_mode=self.search_mode,
            default_top_k=self.default_top_k,
            max_top_k=self.max_top_k,
            dense_min_score=self.default_min_score,
            keyword_min_score=self.keyword_min_score,
            hybrid_min_score=self.hybrid_min_score,
            rerank_min_score=self.rerank_min_score,
            rrf_k=self.rrf_k,
            dense_weight=self.dense_weight,
            keyword_weight=self.keyword_weight,
            dense_depth=self.dense_depth,
            keyword_depth=self.keyword_depth,
            rerank_depth=self.rerank_depth,
            rerank_by_default=self.rerank_by_default,
        )
