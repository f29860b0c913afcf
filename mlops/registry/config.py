"""What a serving configuration holds: the retrieval, chunking and generation settings
(by their settings field names), the embedder version it needs, and its metrics."""

from __future__ import annotations

from typing import Any

from services.generation.config import GenerationSettings
from services.ingest.config import IngestSettings
from services.retrieval.config import RetrievalSettings

MODEL_NAME = "ragchat-rag"
EMBEDDER_MODEL = "ragchat-embedder"
CHAMPION, CHALLENGER = "champion", "challenger"

RETRIEVAL_KEYS = (
    "search_mode", "default_top_k", "max_top_k", "default_min_score", "keyword_min_score",
    "hybrid_min_score", "rerank_min_score", "rrf_k", "dense_weight", "keyword_weight",
    "dense_depth", "keyword_depth", "reranker", "rerank_depth", "bm25_k1", "bm25_b",
    "hnsw_ef_search",
)
CHUNKING_KEYS = ("chunk_tokens", "chunk_overlap_tokens")
GENERATION_KEYS = (
    "llm_provider", "openai_model", "max_tokens", "max_context_chunks", "min_answer_support",
    "query_rewrite",
)
SERVING_KEYS = RETRIEVAL_KEYS + CHUNKING_KEYS + GENERATION_KEYS


def default_settings() -> dict[str, Any]:
    """Today's serving settings as the environment (or the defaults) give them."""
    values: dict[str, Any] = {}
    for cls, keys in ((RetrievalSettings, RETRIEVAL_KEYS), (IngestSettings, CHUNKING_KEYS),
                      (GenerationSettings, GENERATION_KEYS)):
        current = cls().model_dump()
        values.update({key: current[key] for key in keys})
    return values


def retrieval_settings(settings: dict[str, Any]) -> RetrievalSettings:
    """RetrievalSettings with `settings` applied (validated: out-of-range values raise)."""
    return RetrievalSettings(**{k: v for k, v in settings.items() if k in RETRIEVAL_KEYS})


def serving_payload(
    settings: dict[str, Any], metrics: dict[str, float], embedder_version: str | None = None,
    source: str = "",
) -> dict[str, Any]:
    """config.json: every serving key (missing ones from today's defaults) and metrics."""
    unknown = sorted(set(settings) - set(SERVING_KEYS))
    if unknown:
        raise ValueError(f"not serving settings: {', '.join(unknown)}")
    return {
        "schema": 1,
        "settings": {**default_settings(), **settings},
        "requires": {EMBEDDER_MODEL: embedder_version},
        "metrics": metrics,
        "source": source,
    }
