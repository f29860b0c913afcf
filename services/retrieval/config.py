"""Settings of the retrieval service."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import EmbeddingSettings

DEFAULT_PORT = 50051


class RetrievalSettings(EmbeddingSettings):
    """RAGCHAT_* environment variables read by the retrieval service."""

    default_top_k: int = Field(default=5, ge=1)
    max_top_k: int = Field(default=100, ge=1)
    # Cosine similarity below which a chunk is not considered relevant.
    default_min_score: float = Field(default=0.25, ge=-1.0, le=1.0)
