"""Query-time retrieval: embed the query, search the store, apply the threshold."""

from __future__ import annotations

from opentelemetry import trace

from services.common.embeddings import EmbeddingProvider
from services.common.errors import InvalidArgument
from services.common.telemetry import ATTR_MIN_SCORE, ATTR_RESULT_COUNT, ATTR_TOP_K
from services.common.types import ScoredChunk, SearchFilter
from services.common.vectorstore.base import VectorStore

MAX_QUERY_CHARS = 4000


class Retriever:
    def __init__(
        self,
        embeddings: EmbeddingProvider,
        store: VectorStore,
        default_top_k: int,
        max_top_k: int,
        default_min_score: float,
    ) -> None:
        self._embeddings = embeddings
        self._store = store
        self._default_top_k = default_top_k
        self._max_top_k = max_top_k
        self._default_min_score = default_min_score

    def search(
        self,
        query: str,
        top_k: int = 0,
        min_score: float = 0.0,
        flt: SearchFilter | None = None,
    ) -> list[ScoredChunk]:
        """Chunks scoring at least min_score, best first; 0 means the defaults."""
        if not query.strip():
            raise InvalidArgument("query must not be empty")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidArgument(f"query exceeds {MAX_QUERY_CHARS} characters")
        if top_k < 0 or top_k > self._max_top_k:
            raise InvalidArgument(f"top_k must be between 1 and {self._max_top_k}")
        if not -1.0 <= min_score <= 1.0:
            raise InvalidArgument("min_score must be between -1 and 1")
        k = top_k or self._default_top_k
        threshold = min_score or self._default_min_score
        span = trace.get_current_span()
        span.set_attribute(ATTR_TOP_K, k)
        span.set_attribute(ATTR_MIN_SCORE, threshold)
        vector = self._embeddings.embed_query(query)
        results = self._store.search(vector, k, threshold, flt)
        span.set_attribute(ATTR_RESULT_COUNT, len(results))
        return results
