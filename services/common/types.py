"""Plain domain types shared by the services; no protobuf, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class DocumentMeta:
    """What the stores keep about a document besides its chunks."""

    document_id: str
    title: str
    source: str
    content_type: str
    tags: tuple[str, ...] = ()
    created_at: datetime | None = None
    # The version being written; 0 = unversioned (offline tools: create or overwrite).
    version: int = 0


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk as written by the ingest worker.

    `page` is 1-based (PDF page, PPTX slide) or None; `heading` is the heading path
    of the section it came from ("Benefits > Leave", a sheet name) or "".
    """

    chunk_id: str
    document_id: str
    ordinal: int
    text: str
    page: int | None = None
    heading: str = ""


@dataclass(frozen=True)
class ScoredChunk:
    """A chunk returned by a search, with its score (higher is better)."""

    chunk_id: str
    document_id: str
    title: str
    source: str
    text: str
    ordinal: int
    score: float
    score_kind: str = "dense"
    page: int | None = None
    heading: str = ""


@dataclass(frozen=True)
class SearchFilter:
    """Metadata filter; every non-empty field must match (AND).

    Exact semantics: a filter that matches no document yields no results.
    """

    sources: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    document_ids: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not (
            self.sources
            or self.tags
            or self.created_after
            or self.created_before
            or self.document_ids
        )


@dataclass(frozen=True)
class HistoryTurn:
    """One earlier turn of a conversation."""

    role: str  # "user" or "assistant"
    content: str


@dataclass(frozen=True)
class Answer:
    """A generated answer with the chunks it cites."""

    text: str
    citations: tuple[ScoredChunk, ...] = field(default_factory=tuple)
    refused: bool = False
    model: str = ""
    # Streamed [n] (prompt numbering) -> [m] in text/citations; absent n were removed.
    renumbered: dict[int, int] = field(default_factory=dict)
