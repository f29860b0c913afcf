"""Second-stage rerankers: re-score a short candidate list with a stronger model."""

from __future__ import annotations

import logging
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from services.common.embeddings import EmbeddingProvider
from services.common.types import ScoredChunk

logger = logging.getLogger(__name__)

RERANKERS = ("none", "embedding", "cross-encoder", "blend")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    "a an and are as at be by did do does for from had has have how in is it its of on or "
    "that the their they this to was were what when where which who whom whose why with".split()
)


class Reranker(ABC):
    """Re-scores candidates for a query. Blocking."""

    name: str

    @property
    def score_kind(self) -> str:
        return f"rerank:{self.name}"

    @abstractmethod
    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """One relevance score per text, higher is better."""

    def rerank(self, query: str, chunks: Sequence[ScoredChunk]) -> list[ScoredChunk]:
        """The chunks best first by this reranker, carrying its score and score_kind."""
        if not chunks:
            return []
        values = np.asarray(self.scores(query, [c.text for c in chunks]), dtype=np.float64)
        # A stable sort keeps the first stage's order between equal scores.
        order = sorted(range(len(chunks)), key=lambda i: -values[i])
        return [
            replace(chunks[i], score=float(values[i]), score_kind=self.score_kind) for i in order
        ]


class CrossEncoderReranker(Reranker):
    """A sentence-transformers CrossEncoder read from a local folder; scores in (0, 1)."""

    name = "cross-encoder"

    def __init__(
        self, model_path: str, device: str = "cpu", batch_size: int = 32,
        max_length: int = 512,
    ) -> None:
        if not model_path or not Path(model_path).is_dir():
            raise ValueError(
                f"RAGCHAT_RERANKER_MODEL_PATH must be a local cross-encoder folder, "
                f"got {model_path!r}"
            )
        from sentence_transformers import CrossEncoder  # deferred: loads torch

        self._model = CrossEncoder(
            model_path, device=device, local_files_only=True, max_length=max_length
        )
        self._batch_size = batch_size
        logger.info("cross-encoder reranker loaded from %s", model_path)

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        # predict() applies the model's activation: a sigmoid for one-label models.
        return np.asarray(
            self._model.predict(
                [(query, text) for text in texts],
                batch_size=self._batch_size,
                show_progress_bar=False,
            ),
            dtype=np.float64,
        ).reshape(-1)


class EmbeddingReranker(Reranker):
    """Cosine similarity between the query and each candidate under an embedding model.

    Useful when first-stage candidates come from keyword search or fusion, or when the
    model differs from the one that built the index.
    """

    name = "embedding"

    def __init__(self, embeddings: EmbeddingProvider) -> None:
        self._embeddings = embeddings

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        # Both sides come back L2-normalised, so the dot product is the cosine.
        query_vector = self._embeddings.embed_query(query)
        return np.asarray(self._embeddings.embed_documents(texts) @ query_vector,
                          dtype=np.float64)


class BlendReranker(Reranker):
    """Embedding cosine plus the IDF-weighted share of the query's key terms that a
    candidate contains (IDF over the candidates), plus a little of the first-stage
    order: the signals a question's best passage shows without a cross-encoder."""

    name = "blend"

    def __init__(
        self, embeddings: EmbeddingProvider, keyword_weight: float = 1.0,
        first_stage_weight: float = 0.0,
    ) -> None:
        self._cosine = EmbeddingReranker(embeddings)
        self._keyword_weight = keyword_weight
        self._first_stage_weight = first_stage_weight

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        cosine = self._cosine.scores(query, texts)
        first_stage = 1.0 - np.arange(len(texts), dtype=np.float64) / max(len(texts), 1)
        return (cosine + self._keyword_weight * keyword_overlap(query, texts)
                + self._first_stage_weight * first_stage)


def keyword_overlap(query: str, texts: Sequence[str]) -> np.ndarray:
    """Per text: IDF-weighted share (0..1) of the query's key terms it contains."""
    docs = [{_stem(w) for w in _WORD.findall(t.lower())} for t in texts]
    query_terms = {_stem(w) for w in _WORD.findall(query.lower()) if w not in _STOPWORDS}
    if not docs or not query_terms:
        return np.zeros(len(texts))
    idf = {t: math.log(1 + len(docs) / (1 + sum(t in d for d in docs))) for t in query_terms}
    total = sum(idf.values()) or 1.0
    return np.asarray([sum(idf[t] for t in query_terms if t in d) / total for d in docs])


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def build_reranker(
    kind: str,
    *,
    embeddings: EmbeddingProvider | None = None,
    model_path: str = "",
    device: str = "cpu",
) -> Reranker | None:
    """The reranker named by `kind` ("none" gives None); the one place that knows them."""
    name = (kind or "none").strip().lower()
    if name == "none":
        return None
    if name == "embedding":
        if embeddings is None:
            raise ValueError("the embedding reranker needs an embedding provider")
        return EmbeddingReranker(embeddings)
    if name == "blend":
        if embeddings is None:
            raise ValueError("the blend reranker needs an embedding provider")
        return BlendReranker(embeddings)
    if name == "cross-encoder":
        return CrossEncoderReranker(model_path, device=device)
    raise ValueError(f"unknown reranker {kind!r}; expected one of {', '.join(RERANKERS)}")
