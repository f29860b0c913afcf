"""VectorStore on PostgreSQL + pgvector, over the `documents` and `chunks` tables."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any, LiteralString

import numpy as np
from psycopg import Connection, sql
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

from services.common.errors import DocumentDeleted, DocumentSuperseded
from services.common.generations import Generation, active_generation, live_generations
from services.common.tenancy import DEFAULT_TENANT, tenant_or_none
from services.common.types import ChunkRecord, DocumentMeta, ScoredChunk, SearchFilter
from services.common.vectorstore import pg_generations as gens
from services.common.vectorstore.base import (
    Slice,
    VectorStore,
    as_utc,
    check_keyword_query,
    check_query,
)
from services.common.vectorstore.pg_bm25 import (
    FILTER_JOIN,
    KEYWORD_CANDIDATES,
    KEYWORD_SEARCH,
)
from services.common.vectorstore.pg_rows import bare, conditions, cosines, scored
from services.common.vectorstore.pg_writes import STAGING, write_slice

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

# Hybrid candidates: ids and distances only; `hydrate` reads the fused top k's rows.
_ANN_CANDIDATES = """
SELECT chunk_id, embedding <=> %(q)s AS distance
FROM chunks ORDER BY embedding <=> %(q)s LIMIT %(k)s
"""

_HYDRATE = """
SELECT c.chunk_id, c.document_id, d.title, d.source, c.text, c.ordinal, c.page, c.heading
FROM chunks c JOIN documents d ON d.document_id = c.document_id
WHERE c.chunk_id = ANY(%s)
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
    """Chunks in PostgreSQL; the pool's connections must have pgvector registered.

    Dense search reads one index generation: the one `at()` bound, else the active one
    (looked up at most every `generation_ttl_s`). Writes fill every live generation.
    """

    def __init__(
        self, pool: ConnectionPool, bm25_k1: float = 0.9, bm25_b: float = 0.4,
        ef_search: int = 100, generation_ttl_s: float = 1.0,
    ) -> None:
        if not 1 <= ef_search <= _MAX_EF_SEARCH:
            raise ValueError(f"ef_search must be between 1 and {_MAX_EF_SEARCH}")
        self._pool = pool
        self._ef_search = int(ef_search)
        self._bm25 = {"k1": float(bm25_k1), "b": float(bm25_b)}
        self._ttl = float(generation_ttl_s)
        self._bound: Generation | None = None
        self._active: tuple[float, Generation] | None = None

    @property
    def pool(self) -> ConnectionPool:
        """The connection pool the store searches through."""
        return self._pool

    def at(self, generation: Generation) -> PgVectorStore:
        """The same store, its dense search pinned to `generation`."""
        bound = PgVectorStore(self._pool, self._bm25["k1"], self._bm25["b"], self._ef_search,
                              self._ttl)
        bound._bound = generation
        return bound

    def active_generation(self, fresh: bool = False) -> Generation:
        """The generation queries search (cached for `generation_ttl_s` unless `fresh`)."""
        now = time.monotonic()
        if fresh or self._active is None or now - self._active[0] > self._ttl:
            with self._pool.connection() as conn:
                found = active_generation(conn)
            if found is None:
                raise RuntimeError("no active index generation; run migrate() first")
            self._active = (now, found)
        return self._active[1]

    def live_generations(self) -> list[Generation]:
        with self._pool.connection() as conn:
            return live_generations(conn)

    def generation(self) -> Generation:
        """The generation this store's dense search reads."""
        return self._bound or self.active_generation()

    def dimension(self) -> int:
        """The vector dimension of the generation dense search reads."""
        return self.generation().dim

    def replace_document(
        self,
        doc: DocumentMeta,
        chunks: Sequence[ChunkRecord] | Iterable[Slice],
        vectors: np.ndarray | Mapping[int, np.ndarray] | None = None,
    ) -> None:
        """See VectorStore; vectors may be labelled by generation (a mapping per slice),
        and must then cover every live generation (else GenerationsChanged)."""
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
            # Read under the document's lock: a generation that becomes live after
            # this is filled by its reindex message, which waits for this lock.
            live = live_generations(conn)
            slices = gens.labelled_slices(doc, chunks, vectors, live)
            removed = conn.execute(
                "DELETE FROM chunks WHERE document_id = %s", (doc.document_id,)
            ).rowcount
            conn.execute(STAGING)
            try:
                with conn.cursor() as cur:
                    for part, by_gen in slices:
                        write_slice(cur, part, by_gen, live)
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
        rows = self._dense_rows(vector, top_k, flt, light=False)
        return [scored(columns, score, "dense") for *columns, score in cosines(rows, min_score)]

    def search_candidates(
        self,
        vector: np.ndarray,
        top_k: int,
        min_score: float = 0.0,
        flt: SearchFilter | None = None,
    ) -> list[ScoredChunk]:
        rows = self._dense_rows(vector, top_k, flt, light=True)
        return [bare(chunk_id, score, "dense") for chunk_id, score in cosines(rows, min_score)]

    def _dense_rows(
        self, vector: np.ndarray, top_k: int, flt: SearchFilter | None, light: bool
    ) -> list[tuple[Any, ...]]:
        """Rows ending in the cosine distance (`light`: chunk id and distance only)."""
        generation = self.generation()
        query = check_query(vector, top_k, generation.dim)
        params: dict[str, Any] = {"q": query, "k": top_k}
        exact = (flt is not None and not flt.is_empty()) or top_k > _MAX_EF_SEARCH
        ann: sql.Composable | LiteralString = _ANN_CANDIDATES if light else _ANN_SEARCH
        if not generation.in_chunks:
            ann = gens.search_statement(gens.ANN_CANDIDATES if light else gens.ANN_SEARCH,
                                        generation)
        with self._pool.connection() as conn:
            if exact:
                where = conditions(flt or SearchFilter(), params)
                statement = (sql.SQL(_EXACT_SEARCH).format(conditions=where)
                             if generation.in_chunks
                             else gens.search_statement(gens.EXACT_SEARCH, generation, where))
                rows = conn.execute(statement, params).fetchall()
                return [(row[0], row[-1]) for row in rows] if light else rows
            # The HNSW scan returns at most ef_search rows: never fewer than k. The
            # setting is local to the checkout's transaction (an explicit one only in
            # autocommit: a savepoint would cost two more round trips); one pipeline
            # sends it with the query.
            ef = str(max(self._ef_search, top_k))
            local = conn.transaction() if conn.autocommit else nullcontext()
            with local, conn.pipeline():
                conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (ef,))
                return conn.execute(ann, params).fetchall()

    def keyword_search(
        self, query: str, top_k: int, flt: SearchFilter | None = None
    ) -> list[ScoredChunk]:
        rows = self._keyword_rows(query, top_k, flt, KEYWORD_SEARCH)
        return [scored(columns, float(score), "keyword") for *columns, score in rows]

    def keyword_candidates(
        self, query: str, top_k: int, flt: SearchFilter | None = None
    ) -> list[ScoredChunk]:
        rows = self._keyword_rows(query, top_k, flt, KEYWORD_CANDIDATES)
        return [bare(chunk_id, float(score), "keyword") for chunk_id, score in rows]

    def _keyword_rows(
        self, query: str, top_k: int, flt: SearchFilter | None, statement: LiteralString
    ) -> list[tuple[Any, ...]]:
        text = check_keyword_query(query, top_k)
        if not text:
            return []
        # The tenant's own postings and statistics. Row-level security agrees; the owner
        # (tools, outside any tenant scope) reads the default tenant's.
        tenant = tenant_or_none() or DEFAULT_TENANT
        params: dict[str, Any] = {"q": text, "k": top_k, "tenant": tenant, **self._bm25}
        join: sql.Composable = sql.SQL("")
        if flt is not None and not flt.is_empty():
            join = sql.SQL(FILTER_JOIN).format(conditions=conditions(flt, params))
        with self._pool.connection() as conn:
            return conn.execute(sql.SQL(statement).format(filter_join=join), params).fetchall()

    def hydrate(self, chunks: Sequence[ScoredChunk]) -> list[ScoredChunk]:
        if not chunks:
            return []
        with self._pool.connection() as conn:
            rows = conn.execute(_HYDRATE, ([c.chunk_id for c in chunks],)).fetchall()
        found = {row[0]: row for row in rows}
        return [scored(found[c.chunk_id], c.score, c.score_kind)
                for c in chunks if c.chunk_id in found]

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
