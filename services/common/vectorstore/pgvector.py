"""VectorStore on PostgreSQL + pgvector, over the `documents` and `chunks` tables."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from psycopg import Connection, sql
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

from services.common.db import chunks_dimension
from services.common.errors import DocumentDeleted, DocumentSuperseded
from services.common.tenancy import DEFAULT_TENANT, tenant_or_none
from services.common.types import ChunkRecord, DocumentMeta, ScoredChunk, SearchFilter
from services.common.vectorstore.base import (
    Slice,
    VectorStore,
    as_utc,
    check_keyword_query,
    check_query,
    checked_slices,
)
from services.common.vectorstore.pg_bm25 import FILTER_JOIN, KEYWORD_SEARCH

logger = logging.getLogger(__name__)

_MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search

# Only the columns the indexer owns are updated: size, hash, object key and creation time
# belong to ingest and must survive a re-index.
_UPSERT_DOCUMENT = """
INSERT INTO documents (document_id, title, source, content_type, tags, created_at)
VALUES (%s, %s, %s, %s, %s, COALESCE(%s, now()))
ON CONFLICT (document_id) DO UPDATE SET
    title = EXCLUDED.title,
    source = EXCLUDED.source,
    content_type = EXCLUDED.content_type,
    tags = EXCLUDED.tags
"""

# Row-level security refuses COPY into chunks: slices are copied into a session-private
# staging table (no policies; emptied at commit) and moved with one INSERT each.
_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS chunk_staging (chunk_id text, document_id text,"
    " ordinal int, text text, page int, heading text, embedding vector) ON COMMIT DELETE ROWS"
)
_COPY_CHUNKS = (
    "COPY chunk_staging (chunk_id, document_id, ordinal, text, page, heading, embedding)"
    " FROM STDIN (FORMAT BINARY)"
)
_MOVE_CHUNKS = (
    "WITH moved AS (DELETE FROM chunk_staging RETURNING *)"
    " INSERT INTO chunks (chunk_id, document_id, ordinal, text, page, heading, embedding)"
    " SELECT chunk_id, document_id, ordinal, text, page, heading, embedding FROM moved"
)

# Approximate: the HNSW index answers ORDER BY distance LIMIT k.
_ANN_SEARCH = """
SELECT c.chunk_id, c.document_id, d.title, d.source, c.text, c.ordinal, c.page, c.heading,
       c.distance
FROM (
    SELECT chunk_id, document_id, text, ordinal, page, heading,
           embedding <=> %(q)s AS distance
    FROM chunks ORDER BY embedding <=> %(q)s LIMIT %(k)s
) c JOIN documents d ON d.document_id = c.document_id
ORDER BY c.distance
"""

# Exact: the MATERIALIZED CTE keeps the planner from using the HNSW index, whose
# post-filtering could return fewer than k of the matching chunks.
_EXACT_SEARCH = """
WITH hits AS MATERIALIZED (
    SELECT c.chunk_id, c.document_id, d.title, d.source, c.text, c.ordinal, c.page, c.heading,
           c.embedding <=> %(q)s AS distance
    FROM chunks c JOIN documents d ON d.document_id = c.document_id
    WHERE {conditions}
)
SELECT chunk_id, document_id, title, source, text, ordinal, page, heading, distance
FROM hits ORDER BY distance LIMIT %(k)s
"""

class PgVectorStore(VectorStore):
    """Chunks in PostgreSQL; the pool's connections must have pgvector registered."""

    def __init__(
        self, pool: ConnectionPool, bm25_k1: float = 0.9, bm25_b: float = 0.4,
        ef_search: int = 100,
    ) -> None:
        if not 1 <= ef_search <= _MAX_EF_SEARCH:
            raise ValueError(f"ef_search must be between 1 and {_MAX_EF_SEARCH}")
        self._pool = pool
        self._ef_search = int(ef_search)
        self._dim: int | None = None
        self._bm25 = {"k1": float(bm25_k1), "b": float(bm25_b)}

    @property
    def pool(self) -> ConnectionPool:
        """The connection pool the store searches through."""
        return self._pool

    def dimension(self) -> int:
        """The dimension of chunks.embedding (the schema must have been migrated)."""
        if self._dim is None:
            with self._pool.connection() as conn:
                dim = chunks_dimension(conn)
            if dim is None:
                raise RuntimeError("table chunks does not exist; run migrate() first")
            self._dim = dim
        return self._dim

    def replace_document(
        self,
        doc: DocumentMeta,
        chunks: Sequence[ChunkRecord] | Iterable[Slice],
        vectors: np.ndarray | None = None,
    ) -> None:
        slices = checked_slices(doc, chunks, vectors, self.dimension())
        created = as_utc(doc.created_at) if doc.created_at else None
        written = 0
        # One transaction: searches see the old chunks until the last slice commits.
        with self._pool.connection() as conn, conn.transaction():
            # Both branches lock the document row first, so two concurrent replaces of
            # the same document run one after the other instead of interleaving.
            if doc.version:
                _claim_version(conn, doc)
            else:
                conn.execute(
                    _UPSERT_DOCUMENT,
                    (doc.document_id, doc.title, doc.source, doc.content_type,
                     list(doc.tags), created),
                )
            removed = conn.execute(
                "DELETE FROM chunks WHERE document_id = %s", (doc.document_id,)
            ).rowcount
            conn.execute(_STAGING)
            try:
                with conn.cursor() as cur:
                    for part, matrix in slices:
                        with cur.copy(_COPY_CHUNKS) as copy:
                            copy.set_types(
                                ["text", "text", "int4", "text", "int4", "text", "vector"]
                            )
                            for chunk, vector in zip(part, matrix, strict=True):
                                copy.write_row((chunk.chunk_id, chunk.document_id,
                                                chunk.ordinal, chunk.text, chunk.page,
                                                chunk.heading, vector))
                        cur.execute(_MOVE_CHUNKS)
                        written += len(part)
            except pg_errors.ForeignKeyViolation as exc:
                raise DocumentDeleted(f"document {doc.document_id!r} was deleted") from exc
        logger.debug("document %s: replaced %d chunks with %d", doc.document_id, removed,
                     written)

    def delete_document(self, document_id: str) -> int:
        # The documents row is left alone: ingest owns it and deletes it itself.
        with self._pool.connection() as conn:
            cur = conn.execute("DELETE FROM chunks WHERE document_id = %s", (document_id,))
            return cur.rowcount

    def search(
        self,
        vector: np.ndarray,
        top_k: int,
        min_score: float = 0.0,
        flt: SearchFilter | None = None,
    ) -> list[ScoredChunk]:
        query = check_query(vector, top_k, self.dimension())
        params: dict[str, Any] = {"q": query, "k": top_k}
        exact = (flt is not None and not flt.is_empty()) or top_k > _MAX_EF_SEARCH
        with self._pool.connection() as conn, conn.transaction():
            if exact:
                conditions = _conditions(flt or SearchFilter(), params)
                statement = sql.SQL(_EXACT_SEARCH).format(conditions=conditions)
                rows = conn.execute(statement, params).fetchall()
            else:
                # The HNSW scan returns at most ef_search rows: never fewer than k.
                ef = str(max(self._ef_search, top_k))
                conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (ef,))
                rows = conn.execute(_ANN_SEARCH, params).fetchall()
        results = []
        for *columns, distance in rows:
            score = 1.0 - float(distance)
            if math.isnan(score) or score < min_score:
                continue  # NaN: a zero vector has no direction
            results.append(_scored(columns, score, "dense"))
        return results

    def keyword_search(
        self, query: str, top_k: int, flt: SearchFilter | None = None
    ) -> list[ScoredChunk]:
        text = check_keyword_query(query, top_k)
        if not text:
            return []
        # The tenant's own postings and statistics. Row-level security agrees; the owner
        # (tools, outside any tenant scope) reads the default tenant's.
        tenant = tenant_or_none() or DEFAULT_TENANT
        params: dict[str, Any] = {"q": text, "k": top_k, "tenant": tenant, **self._bm25}
        join: sql.Composable = sql.SQL("")
        if flt is not None and not flt.is_empty():
            join = sql.SQL(FILTER_JOIN).format(conditions=_conditions(flt, params))
        statement = sql.SQL(KEYWORD_SEARCH).format(filter_join=join)
        with self._pool.connection() as conn:
            rows = conn.execute(statement, params).fetchall()
        return [_scored(columns, float(score), "keyword") for *columns, score in rows]

    def count_chunks(self, document_id: str | None = None) -> int:
        with self._pool.connection() as conn:
            if document_id is None:
                row = conn.execute("SELECT count(*) FROM chunks").fetchone()
            else:
                row = conn.execute(
                    "SELECT count(*) FROM chunks WHERE document_id = %s", (document_id,)
                ).fetchone()
        return int(row[0]) if row else 0


def _claim_version(conn: Connection[Any], doc: DocumentMeta) -> None:
    """Lock the document row; raise unless `doc.version` is still its current version."""
    row = conn.execute(
        "SELECT version FROM documents WHERE document_id = %s FOR UPDATE", (doc.document_id,)
    ).fetchone()
    if row is None:
        raise DocumentDeleted(f"document {doc.document_id!r} was deleted")
    if int(row[0]) != doc.version:
        raise DocumentSuperseded(
            f"document {doc.document_id!r} version {doc.version} was superseded by "
            f"version {row[0]}"
        )


def _scored(columns: Sequence[Any], score: float, kind: str) -> ScoredChunk:
    """A hit from (chunk_id, document_id, title, source, text, ordinal, page, heading)."""
    chunk_id, document_id, title, source, text, ordinal, page, heading = columns
    return ScoredChunk(chunk_id=chunk_id, document_id=document_id, title=title, source=source,
                       text=text, ordinal=ordinal, score=score, score_kind=kind, page=page,
                       heading=heading)


def _conditions(flt: SearchFilter, params: dict[str, Any]) -> sql.Composable:
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
