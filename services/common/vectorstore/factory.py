"""Builds the configured VectorStore: the one place that knows every backend."""

from __future__ import annotations

from psycopg_pool import ConnectionPool

from services.common.vectorstore.base import VectorStore

BACKENDS = ("pgvector", "chroma")


def build_vector_store(
    backend: str = "pgvector",
    *,
    pool: ConnectionPool | None = None,
    chroma_path: str | None = None,
    bm25_k1: float = 0.9,
    bm25_b: float = 0.4,
    ef_search: int = 100,
    generation_ttl_s: float = 1.0,
) -> VectorStore:
    """A store for `backend` ("pgvector" needs `pool`, "chroma" needs `chroma_path`)."""
    name = (backend or "pgvector").strip().lower()
    if name == "pgvector":
        if pool is None:
            raise ValueError("the pgvector backend needs a connection pool")
        from services.common.vectorstore.pgvector import PgVectorStore

        return PgVectorStore(pool, bm25_k1=bm25_k1, bm25_b=bm25_b, ef_search=ef_search,
                             generation_ttl_s=generation_ttl_s)
    if name == "chroma":
        if not chroma_path:
            raise ValueError("the chroma backend needs chroma_path")
        from services.common.vectorstore.chroma import ChromaVectorStore

        return ChromaVectorStore(str(chroma_path))
    raise ValueError(f"unknown vector backend {backend!r}; expected one of {', '.join(BACKENDS)}")
