"""The vector store interface and the input checks every implementation shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime

import numpy as np

from services.common.generations import Generation
from services.common.types import ChunkRecord, DocumentMeta, ScoredChunk, SearchFilter

# Part of a document's chunks with their embeddings, one row per chunk; PostgreSQL also
# takes them labelled by index generation (services.common.generations).
Slice = tuple[Sequence[ChunkRecord], np.ndarray | Mapping[int, np.ndarray]]


class VectorStore(ABC):
    """Chunks with embeddings, searchable by cosine similarity. Methods are blocking."""

    @abstractmethod
    def replace_document(
        self,
        doc: DocumentMeta,
        chunks: Sequence[ChunkRecord] | Iterable[Slice],
        vectors: np.ndarray | None = None,
    ) -> None:
        """Store the document's metadata and make the given chunks its only chunks, atomically.

        Either all chunks and their `vectors`, or (no `vectors`) an iterable of
        (chunks, vectors) slices, consumed once and lazily, so a large document is
        never held whole; its old chunks keep serving until the last slice is written.
        Idempotent: running it again with the same input leaves the same state.
        Raises ValueError if vectors do not match the chunks or the store's dimension.
        With `doc.version` set (ingest), raises DocumentSuperseded if the document has a
        newer version, and on PostgreSQL DocumentDeleted if its row is gone; nothing is
        written then. Version 0 (offline tools) creates or overwrites the document.
        """

    @abstractmethod
    def delete_document(self, document_id: str) -> int:
        """Remove the document's chunks; returns how many were removed (0 if unknown)."""

    @abstractmethod
    def search(
        self,
        vector: np.ndarray,
        top_k: int,
        min_score: float = 0.0,
        flt: SearchFilter | None = None,
    ) -> list[ScoredChunk]:
        """The `top_k` chunks most similar to `vector`, best first.

        Score is cosine similarity (score_kind "dense"); chunks scoring below `min_score`
        are left out. A filter has exact semantics: results come only from documents
        matching it.
        """

    @abstractmethod
    def keyword_search(
        self, query: str, top_k: int, flt: SearchFilter | None = None
    ) -> list[ScoredChunk]:
        """The `top_k` chunks ranked by BM25 for the query's terms, best first.

        Scores are positive with score_kind "keyword"; a chunk sharing no term with the
        query is never returned, so a query of stopwords only returns nothing. The filter
        has the same exact semantics as in `search`.
        """

    def search_candidates(
        self,
        vector: np.ndarray,
        top_k: int,
        min_score: float = 0.0,
        flt: SearchFilter | None = None,
    ) -> list[ScoredChunk]:
        """`search`, but a store may leave text and metadata out: see `hydrate`."""
        return self.search(vector, top_k, min_score, flt)

    def keyword_candidates(
        self, query: str, top_k: int, flt: SearchFilter | None = None
    ) -> list[ScoredChunk]:
        """`keyword_search`, but a store may leave text and metadata out: see `hydrate`."""
        return self.keyword_search(query, top_k, flt)

    def hydrate(self, chunks: Sequence[ScoredChunk]) -> list[ScoredChunk]:
        """Candidates with their text and metadata, in order, scores kept.

        A chunk deleted since it was found is left out.
        """
        return list(chunks)

    def live_generations(self) -> list[Generation]:
        """The index generations a write must fill ([]: the store has just one)."""
        return []

    @abstractmethod
    def count_chunks(self, document_id: str | None = None) -> int:
        """Chunks stored in total, or for one document."""


def check_batch(
    doc: DocumentMeta, chunks: Sequence[ChunkRecord], vectors: np.ndarray, dim: int | None
) -> np.ndarray:
    """Validate a replace_document batch; returns vectors as a float32 (n, dim) matrix."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.size == 0 and not chunks:
        return matrix.reshape(0, dim or 0)
    if matrix.ndim != 2:
        raise ValueError(f"vectors must be a 2-d array, got shape {matrix.shape}")
    if matrix.shape[0] != len(chunks):
        raise ValueError(f"{len(chunks)} chunks but {matrix.shape[0]} vectors")
    if dim is not None and matrix.shape[1] != dim:
        raise ValueError(f"vectors have dimension {matrix.shape[1]}, the store expects {dim}")
    if not np.isfinite(matrix).all():
        raise ValueError("vectors contain NaN or infinite values")
    for chunk in chunks:
        if chunk.document_id != doc.document_id:
            raise ValueError(
                f"chunk {chunk.chunk_id} belongs to {chunk.document_id}, not {doc.document_id}"
            )
    if len({c.chunk_id for c in chunks}) != len(chunks):
        raise ValueError("chunk ids must be unique")
    if len({c.ordinal for c in chunks}) != len(chunks):
        raise ValueError("chunk ordinals must be unique within a document")
    return matrix


def checked_slices(
    doc: DocumentMeta,
    chunks: Sequence[ChunkRecord] | Iterable[Slice],
    vectors: np.ndarray | None,
    dim: int | None,
) -> Iterator[tuple[Sequence[ChunkRecord], np.ndarray]]:
    """replace_document's input as validated slices (float32 matrices), lazily.

    Chunk ids and ordinals must be unique across all slices; a bad slice raises
    ValueError when it is reached, before anything of it is written.
    """
    slices: Iterable[Slice] = (
        [(chunks, vectors)] if vectors is not None else chunks  # type: ignore[list-item]
    )
    seen = UniqueChunks()
    for part, part_vectors in slices:
        matrix = check_batch(doc, part, part_vectors, dim)
        seen.add(part)
        yield part, matrix


class UniqueChunks:
    """Chunk ids and ordinals seen so far in a document's slices; both must be unique."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._ordinals: set[int] = set()
        self._total = 0

    def add(self, part: Sequence[ChunkRecord]) -> None:
        self._total += len(part)
        self._ids.update(c.chunk_id for c in part)
        self._ordinals.update(c.ordinal for c in part)
        if len(self._ids) != self._total:
            raise ValueError("chunk ids must be unique")
        if len(self._ordinals) != self._total:
            raise ValueError("chunk ordinals must be unique within a document")


def check_keyword_query(query: str, top_k: int) -> str:
    """Validate a keyword search request; returns the stripped query."""
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    return query.strip()


def check_query(vector: np.ndarray, top_k: int, dim: int | None) -> np.ndarray:
    """Validate a search request; returns the query as a float32 1-d array."""
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    query = np.asarray(vector, dtype=np.float32).reshape(-1)
    if dim is not None and query.shape[0] != dim:
        raise ValueError(f"query has dimension {query.shape[0]}, the store expects {dim}")
    if not np.isfinite(query).all():
        raise ValueError("query contains NaN or infinite values")
    return query


def as_utc(moment: datetime) -> datetime:
    """Timezone-aware UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
