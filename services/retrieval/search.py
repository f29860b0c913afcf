"""Query-time retrieval: dense, keyword or hybrid candidates, optional rerank, threshold."""

from __future__ import annotations

import contextvars
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import trace
from psycopg import errors as pg_errors

from services.common.embeddings import EmbeddingProvider
from services.common.errors import InvalidArgument
from services.common.telemetry import (
    ATTR_CANDIDATE_COUNT,
    ATTR_INDEX_GENERATION,
    ATTR_MIN_SCORE,
    ATTR_RERANKER,
    ATTR_RESULT_COUNT,
    ATTR_SEARCH_MODE,
    ATTR_TOP_K,
)
from services.common.types import ScoredChunk, SearchFilter
from services.common.vectorstore.base import VectorStore
from services.retrieval.fusion import weighted_rrf
from services.retrieval.rerank import Reranker

if TYPE_CHECKING:
    from services.retrieval.generations import ActiveIndex

MAX_QUERY_CHARS = 4000
MODES = ("dense", "keyword", "hybrid")
tracer = trace.get_tracer(__name__)


@dataclass(frozen=True)
class SearchPolicy:
    """How the retriever searches when a request does not say otherwise."""

    default_mode: str = "hybrid"
    default_top_k: int = 5
    max_top_k: int = 100
    # Cosine floor of dense results, also applied to the dense side of hybrid search so
    # an off-topic question still finds nothing.
    dense_min_score: float = 0.25
    keyword_min_score: float = 0.0
    hybrid_min_score: float = 0.0
    rerank_min_score: float = 0.0
    rrf_k: float = 10.0
    dense_weight: float = 1.0
    keyword_weight: float = 1.0
    dense_depth: int = 100
    keyword_depth: int = 100
    rerank_depth: int = 50
    # What a request that leaves `rerank` unset gets: plain search stays fast; answer
    # routes (the gateway's /query) ask for the reranker explicitly.
    rerank_by_default: bool = False

    def default_min_score(self, score_kind: str) -> float:
        if score_kind.startswith("rerank:"):
            return self.rerank_min_score
        return {"dense": self.dense_min_score, "keyword": self.keyword_min_score,
                "hybrid": self.hybrid_min_score}[score_kind]


@dataclass(frozen=True)
class SearchResult:
    """Chunks best first; `mode` and `reranker` say how they were found and scored."""

    chunks: list[ScoredChunk]
    mode: str
    reranker: str = ""


class Retriever:
    def __init__(
        self,
        embeddings: EmbeddingProvider,
        store: VectorStore,
        policy: SearchPolicy | None = None,
        reranker: Reranker | None = None,
        index: ActiveIndex | None = None,
    ) -> None:
        """With `index`, dense search follows the active index generation (its model and
        its vectors); otherwise it uses `embeddings` and `store` as they are."""
        self._embeddings = embeddings
        self._store = store
        self._index = index
        self.policy = policy or SearchPolicy()
        self._reranker = reranker
        if self.policy.default_mode not in MODES:
            raise ValueError(f"default mode must be one of {', '.join(MODES)}")
        # Hybrid search runs its keyword query here, on a connection of its own, while
        # the calling thread embeds the query and runs the dense one.
        self._keyword_pool = ThreadPoolExecutor(thread_name_prefix="keyword")

    def search(
        self,
        query: str,
        top_k: int = 0,
        min_score: float | None = None,
        flt: SearchFilter | None = None,
        mode: str = "",
        rerank: bool | None = None,
    ) -> SearchResult:
        """The best `top_k` chunks (0: the default) scoring at least `min_score`.

        `min_score` applies to the final score, whose scale depends on the mode (cosine,
        BM25 or fused rank score in (0, 1]) or on the reranker; None means the policy's
        default for that score kind. `rerank` None means the policy's `rerank_by_default`
        (with a reranker configured).
        """
        mode = mode or self.policy.default_mode
        k = self._check(query, top_k, min_score, mode)
        if rerank and self._reranker is None:
            raise InvalidArgument(
                "rerank was requested but no reranker is configured (RAGCHAT_RERANKER=none; "
                "the gateway asks for one on answers unless RAGCHAT_ANSWER_RERANK=false)",
                field="rerank",
            )
        wanted = self.policy.rerank_by_default if rerank is None else rerank
        reranker = self._reranker if wanted else None
        span = trace.get_current_span()
        span.set_attribute(ATTR_SEARCH_MODE, mode)
        span.set_attribute(ATTR_TOP_K, k)
        span.set_attribute(ATTR_RERANKER, reranker.name if reranker else "none")
        candidates = self._candidates(query, mode, k, min_score, flt, reranker is not None)
        span.set_attribute(ATTR_CANDIDATE_COUNT, len(candidates))
        # Hybrid candidates come without text: only the chunks that survive get read.
        bare = mode == "hybrid"
        if reranker is not None:
            depth = max(self.policy.rerank_depth, k)
            with tracer.start_as_current_span("retrieval.rerank"):
                shortlist = candidates[:depth]
                if bare:
                    shortlist, bare = self._store.hydrate(shortlist), False
                candidates = reranker.rerank(query, shortlist)
        kind = reranker.score_kind if reranker else mode
        threshold = self.policy.default_min_score(kind) if min_score is None else min_score
        span.set_attribute(ATTR_MIN_SCORE, threshold)
        results = [c for c in candidates if c.score >= threshold][:k]
        if bare:
            results = self._store.hydrate(results)
        span.set_attribute(ATTR_RESULT_COUNT, len(results))
        return SearchResult(results, mode, reranker.name if reranker else "")

    def _check(self, query: str, top_k: int, min_score: float | None, mode: str) -> int:
        if not query.strip():
            raise InvalidArgument("query must not be empty", field="query")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidArgument(f"query exceeds {MAX_QUERY_CHARS} characters", field="query")
        if top_k < 0 or top_k > self.policy.max_top_k:
            raise InvalidArgument(
                f"top_k must be between 1 and {self.policy.max_top_k}", field="top_k"
            )
        if min_score is not None and not math.isfinite(min_score):
            raise InvalidArgument("min_score must be a finite number", field="min_score")
        if mode not in MODES:
            raise InvalidArgument(
                f"mode must be one of {', '.join(MODES)}, got {mode!r}", field="mode"
            )
        return top_k or self.policy.default_top_k

    def _candidates(
        self, query: str, mode: str, k: int, min_score: float | None,
        flt: SearchFilter | None, reranking: bool,
    ) -> list[ScoredChunk]:
        """First-stage candidates, best first, in the mode's own score."""
        policy = self.policy
        depth = max(k, policy.rerank_depth) if reranking else k
        if mode == "dense":
            # Without a rerank the cosine is the final score, so the request's
            # threshold can go straight to the store.
            floor = policy.dense_min_score
            if not reranking and min_score is not None:
                floor = min_score
            return self._dense(query, depth, floor, flt)
        if mode == "keyword":
            return self._keyword(query, depth, flt)
        keyword_depth = max(depth, policy.keyword_depth)
        context = contextvars.copy_context()  # the keyword span keeps its parent
        pending = self._keyword_pool.submit(context.run, self._keyword, query, keyword_depth,
                                            flt, True)
        dense = self._dense(query, max(depth, policy.dense_depth), policy.dense_min_score, flt,
                            True)
        keyword = pending.result()
        return weighted_rrf(
            [(dense, policy.dense_weight), (keyword, policy.keyword_weight)], policy.rrf_k
        )

    def _dense(
        self, query: str, depth: int, floor: float, flt: SearchFilter | None, bare: bool = False
    ) -> list[ScoredChunk]:
        with tracer.start_as_current_span("retrieval.dense") as span:
            if self._index is None:
                return _dense_on(self._embeddings, self._store, query, depth, floor, flt, bare)
            route = self._index.route()
            try:
                span.set_attribute(ATTR_INDEX_GENERATION, route.generation.id)
                return _dense_on(route.embeddings, route.store, query, depth, floor, flt, bare)
            except (pg_errors.UndefinedTable, pg_errors.UndefinedColumn):
                # Its vectors were dropped after a switch this process had not seen yet.
                route = self._index.route(fresh=True)
                span.set_attribute(ATTR_INDEX_GENERATION, route.generation.id)
                return _dense_on(route.embeddings, route.store, query, depth, floor, flt, bare)

    def _keyword(
        self, query: str, depth: int, flt: SearchFilter | None, bare: bool = False
    ) -> list[ScoredChunk]:
        with tracer.start_as_current_span("retrieval.keyword"):
            search = self._store.keyword_candidates if bare else self._store.keyword_search
            return search(query, depth, flt)


def _dense_on(
    embeddings: EmbeddingProvider, store: VectorStore, query: str, depth: int, floor: float,
    flt: SearchFilter | None, bare: bool,
) -> list[ScoredChunk]:
    """Embed with `embeddings` and search `store`: the model of the vectors searched."""
    vector = embeddings.embed_query(query)
    search = store.search_candidates if bare else store.search
    return search(vector, depth, floor, flt)
