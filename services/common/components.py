"""One factory for the adapters chosen by configuration (embeddings, vector store)."""

from __future__ import annotations

from psycopg_pool import ConnectionPool

from services.common.embeddings import EmbeddingProvider, build_embeddings
from services.common.settings import EmbeddingSettings
from services.common.vectorstore.base import VectorStore
from services.common.vectorstore.factory import build_vector_store


def embeddings_from(settings: EmbeddingSettings) -> EmbeddingProvider:
    """Load the configured embedding model and check it fits the database column."""
    if settings.embedding_threads:
        import torch

        torch.set_num_threads(settings.embedding_threads)
    provider = build_embeddings(
        settings.embedding_provider,
        settings.embedding_model_path or None,
        settings.embedding_device,
        settings.embedding_precision,
    )
    if provider.dimension != settings.embedding_dim:
        raise ValueError(
            f"embedding model {provider.model_name} produces {provider.dimension}-d vectors "
            f"but RAGCHAT_EMBEDDING_DIM is {settings.embedding_dim}"
        )
    return provider


def vector_store_from(settings: EmbeddingSettings, pool: ConnectionPool) -> VectorStore:
    return build_vector_store(
        settings.vector_backend,
        pool=pool,
        chroma_path=settings.chroma_path,
        bm25_k1=settings.bm25_k1,
        bm25_b=settings.bm25_b,
        ef_search=settings.hnsw_ef_search,
        generation_ttl_s=settings.generation_poll_s,
    )
