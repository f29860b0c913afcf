"""Second-stage rerankers: re-score a short candidate list with a stronger model."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from services.common.embeddings import EmbeddingProvider
from services.common.sentences import TermWeights, split_sentences
from services.common.types import ScoredChunk

logger = logging.getLogger(__name__)

RERANKERS = ("none", "embedding", "cross-encoder", "blend")


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
    candidate contains (IDF over the candidates), scored on the candidate's best
    sentence, plus a little of the whole passage's keyword share and, optionally, of the
    first-stage order: the signals a question's best passage shows without a
    cross-encoder.

    A question is usually answered by one sentence, so a passage whose single sentence
    matches it beats one that shares the same terms spread thinly. Per passage:
    max over sentences of cosine + keyword_weight * max over sentences of keyword share
    + passage_weight * keyword_weight * the passage's keyword share. With
    `sentences=False` it scores whole passages: cosine + keyword_weight * keyword share.
    """

    name = "blend"

    def __init__(
        self, embeddings: EmbeddingProvider, keyword_weight: float = 1.0,
        first_stage_weight: float = 0.0, passage_weight: float = 0.125,
        sentences: bool = True,
    ) -> None:
        self._embeddings = embeddings
        self._keyword_weight = keyword_weight
        self._first_stage_weight = first_stage_weight
        self._passage_weight = passage_weight
        self._sentences = sentences

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        weights = TermWeights(query, texts)
        passage_keywords = np.asarray([weights.overlap(t) for t in texts], dtype=np.float64)
        if self._sentences:
            cosine, keywords = self._best_sentences(query, texts, weights)
            keywords = keywords + self._passage_weight * passage_keywords
        else:
            cosine = EmbeddingReranker(self._embeddings).scores(query, texts)
            keywords = passage_keywords
        first_stage = 1.0 - np.arange(len(texts), dtype=np.float64) / max(len(texts), 1)
        return cosine + self._keyword_weight * keywords + self._first_stage_weight * first_stage

    def _best_sentences(
        self, query: str, texts: Sequence[str], weights: TermWeights
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per text: the best sentence cosine and the best sentence keyword share (each
        maximised on its own; 0 for blank text). One embedding batch for all sentences."""
        split = [split_sentences(t) for t in texts]
        flat = [s for sentences in split for s in sentences]
        cosine, keywords = np.zeros(len(texts)), np.zeros(len(texts))
        if not flat:
            return cosine, keywords
        # Both sides come back L2-normalised, so the dot product is the cosine.
        similarity = self._embeddings.embed_documents(flat) @ self._embeddings.embed_query(query)
        start = 0
        for i, sentences in enumerate(split):
            if sentences:
                cosine[i] = float(np.max(similarity[start : start + len(sentences)]))
                keywords[i] = max(weights.overlap(s) for s in sentences)
            start += len(sentences)
        return cosine, keywords


def keyword_overlap(query: str, texts: Sequence[str]) -> np.ndarray:
    """Per text: IDF-weighted share (0..1) of the query's key terms it contains."""
    weights = TermWeights(query, texts)
    return np.asarray([weights.overlap(t) for t in texts], dtype=np.float64)


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
