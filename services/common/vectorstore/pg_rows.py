"""Row helpers of PgVectorStore: scored chunks from result rows, filter clauses."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from psycopg import sql

from services.common.types import ScoredChunk, SearchFilter
from services.common.vectorstore.base import as_utc


def cosines(rows: Sequence[Sequence[Any]], min_score: float) -> list[tuple[Any, ...]]:
    """Rows with their trailing distance turned into a cosine, those below the floor out."""
    kept = []
    for *columns, distance in rows:
        if distance is None:  # a chunk without a vector in the searched generation
            continue
        score = 1.0 - float(distance)
        if not math.isnan(score) and score >= min_score:  # NaN: a zero vector
            kept.append((*columns, score))
    return kept


def bare(chunk_id: str, score: float, kind: str) -> ScoredChunk:
    """A candidate without text or metadata (PgVectorStore.hydrate fills them in)."""
    return ScoredChunk(chunk_id=chunk_id, document_id="", title="", source="", text="",
                       ordinal=0, score=score, score_kind=kind)


def scored(columns: Sequence[Any], score: float, kind: str) -> ScoredChunk:
    """A hit from (chunk_id, document_id, title, source, text, ordinal, page, heading)."""
    chunk_id, document_id, title, source, text, ordinal, page, heading = columns
    return ScoredChunk(chunk_id=chunk_id, document_id=document_id, title=title, source=source,
                       text=text, ordinal=ordinal, score=score, score_kind=kind, page=page,
                       heading=heading)


def conditions(flt: SearchFilter, params: dict[str, Any]) -> sql.Composable:
    """The filter as a WHERE clause over documents `d` and chunks `c`; fills `params`."""
    parts: list[sql.Composable] = [sql.SQL("true")]
    if flt.sources:
        params["sources"] = list(flt.sources)
        parts.append(sql.SQL("d.source = ANY(%(sources)s)"))
    if flt.tags:
        params["tags"] = list(flt.tags)
        parts.append(sql.SQL("d.tags @> %(tags)s::text[]"))
    if flt.created_after:
        params["after"] = as_utc(flt.created_after)
        parts.append(sql.SQL("d.created_at >= %(after)s"))
    if flt.created_before:
        params["before"] = as_utc(flt.created_before)
        parts.append(sql.SQL("d.created_at < %(before)s"))
    if flt.document_ids:
        params["ids"] = list(flt.document_ids)
        parts.append(sql.SQL("c.document_id = ANY(%(ids)s)"))
    return sql.SQL(" AND ").join(parts)
