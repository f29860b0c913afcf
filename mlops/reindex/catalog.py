"""The reindex's database side: generations, documents to send, progress, checks.

Everything runs on one owner connection (the migration's role: it creates the new
generation's table); reads across tenants switch to the maintenance role per
transaction, as the services' own upkeep does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from services.common.generations import (
    Generation,
    active_generation,
    all_generations,
    vector_table,
)
from services.common.rls import MAINTENANCE_ROLE

_PROGRESS = """
SELECT count(*) FILTER (WHERE NOT EXISTS (
           SELECT 1 FROM chunks c WHERE c.document_id = d.document_id
           AND NOT EXISTS (SELECT 1 FROM {table} v WHERE v.chunk_id = c.chunk_id))),
       count(*)
FROM documents d
"""
_COUNTS = """
SELECT (SELECT count(*) FROM chunks),
       (SELECT count(*) FROM {table}),
       (SELECT count(*) FROM chunks c
        WHERE NOT EXISTS (SELECT 1 FROM {table} v WHERE v.chunk_id = c.chunk_id))
"""
_SAMPLE = """
SELECT chunk_id, document_id, text FROM chunks
ORDER BY md5(chunk_id || %s) LIMIT %s
"""
_NEIGHBOURS = """
SELECT c.document_id FROM (
    SELECT chunk_id FROM {table} ORDER BY embedding <=> %s LIMIT %s
) v JOIN chunks c ON c.chunk_id = v.chunk_id
"""


@dataclass(frozen=True)
class Counts:
    chunks: int
    vectors: int
    missing: int

    @property
    def complete(self) -> bool:
        return self.missing == 0 and self.vectors == self.chunks


class Catalog:
    """One owner connection to the database, for the length of one reindex."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)  # transactions are explicit
        register_vector(self.conn)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def every_tenant(self) -> Iterator[psycopg.Connection[Any]]:
        """A transaction that reads every tenant's rows."""
        with self.conn.transaction():
            self.conn.execute(sql.SQL("SET LOCAL ROLE {}").format(
                sql.Identifier(MAINTENANCE_ROLE)))
            yield self.conn

    def generations(self) -> list[Generation]:
        with self.conn.transaction():
            return all_generations(self.conn)

    def active(self) -> Generation | None:
        with self.conn.transaction():
            return active_generation(self.conn)

    def documents(self) -> list[tuple[str, str]]:
        """(tenant, document_id) of every document, every tenant."""
        with self.every_tenant() as conn:
            rows = conn.execute("SELECT tenant_id, document_id FROM documents"
                                " ORDER BY tenant_id, created_at").fetchall()
        return [(str(t), str(d)) for t, d in rows]

    def progress(self, generation: Generation) -> tuple[int, int]:
        """(documents whose every chunk has a vector in the generation, documents)."""
        with self.every_tenant() as conn:
            row = conn.execute(sql.SQL(_PROGRESS).format(table=vector_table(generation)))
            done, total = row.fetchone() or (0, 0)
        return int(done), int(total)

    def counts(self, generation: Generation) -> Counts:
        with self.every_tenant() as conn:
            row = conn.execute(sql.SQL(_COUNTS).format(table=vector_table(generation)))
            chunks, vectors, missing = row.fetchone() or (0, 0, 0)
        return Counts(int(chunks), int(vectors), int(missing))

    def sample(self, size: int, seed: str) -> list[tuple[str, str, str]]:
        """A fixed pseudo-random sample of (chunk_id, document_id, text), every tenant."""
        with self.every_tenant() as conn:
            rows = conn.execute(_SAMPLE, (seed, size)).fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def neighbours(self, generation: Generation, vector: np.ndarray, k: int) -> list[str]:
        """Documents of the generation's k nearest chunks (its HNSW index, as served)."""
        with self.every_tenant() as conn:
            conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(max(100, k)),))
            rows = conn.execute(sql.SQL(_NEIGHBOURS).format(table=vector_table(generation)),
                                (np.asarray(vector, dtype=np.float32), k)).fetchall()
        return [str(r[0]) for r in rows]
