"""Vector stores: one interface (base.VectorStore), pgvector and Chroma implementations."""

from services.common.vectorstore.base import VectorStore

__all__ = ["VectorStore"]
