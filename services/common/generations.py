"""Index generations: the vectors of one embedding model, searchable on their own.

A generation is a row of `index_generations` and a place for its vectors. Generation 1
is the `chunks.embedding` column every database already has (the migration adopts it
in place, copying nothing); later ones are tables `chunk_vectors_g<N>` (chunk_id
referencing chunks ON DELETE CASCADE, tenant_id under the same row-level security as
chunks, the vector, an HNSW index of their own). Chunk text, BM25 postings and corpus
statistics belong to chunks and are never duplicated.

States: building (being filled by `mlops.reindex`; new uploads are written to it too)
-> ready (complete; retrieval preloads its model) -> active (what queries search;
exactly one) -> retired (its vectors dropped). A verification failure ends in failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, LiteralString

from psycopg import Connection, sql

from services.common.errors import Unavailable

CHUNKS_STORAGE = "chunks"
LIVE_STATES = ("building", "ready", "active")  # the states every write must fill

# Idempotent; run by services.common.db.migrate after the chunk tables exist. The
# catalog is global (not per tenant): every tenant's chunks share one model.
SCHEMA: LiteralString = """
CREATE TABLE IF NOT EXISTS index_generations (
    id int PRIMARY KEY,
    model_uri text NOT NULL DEFAULT '',
    model_id text NOT NULL DEFAULT '',
    dim int NOT NULL,
    state text NOT NULL CHECK (state IN ('building', 'ready', 'active', 'retired', 'failed')),
    storage text NOT NULL,
    detail text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    retired_at timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS index_generations_one_active
    ON index_generations ((true)) WHERE state = 'active';
INSERT INTO index_generations (id, dim, state, storage, activated_at)
SELECT 1, a.atttypmod, 'active', 'chunks', now()
FROM pg_attribute a
WHERE a.attrelid = 'chunks'::regclass AND a.attname = 'embedding' AND NOT a.attisdropped
ON CONFLICT (id) DO NOTHING;
-- A chunk written while generation 1 is not live has no vector in chunks (and once
-- generation 1 is retired the column is gone).
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'chunks'::regclass
               AND attname = 'embedding' AND NOT attisdropped AND attnotnull) THEN
        ALTER TABLE chunks ALTER COLUMN embedding DROP NOT NULL;
    END IF;
END $$;
GRANT SELECT ON index_generations TO ragchat_app, ragchat_maintenance;
"""


@dataclass(frozen=True)
class Generation:
    """One generation: `model_uri` '' means the process's configured model."""

    id: int
    model_uri: str
    model_id: str
    dim: int
    state: str
    storage: str

    @property
    def in_chunks(self) -> bool:
        """Its vectors are the column chunks.embedding (generation 1)."""
        return self.storage == CHUNKS_STORAGE

    @property
    def label(self) -> str:
        return f"{self.id}:{self.model_id or 'configured'}"


class GenerationsChanged(Unavailable):
    """A generation became live while a document was being embedded: embed it again."""


_COLUMNS = "id, model_uri, model_id, dim, state, storage"


def _row(row: Any) -> Generation:
    return Generation(int(row[0]), str(row[1]), str(row[2]), int(row[3]), str(row[4]),
                      str(row[5]))


def storage_name(generation_id: int) -> str:
    return f"chunk_vectors_g{int(generation_id)}"


def live_generations(conn: Connection[Any]) -> list[Generation]:
    """Every generation a write must fill, the active one first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM index_generations WHERE state = ANY(%s)"
        " ORDER BY state <> 'active', id", (list(LIVE_STATES),)
    ).fetchall()
    return [_row(r) for r in rows]


def active_generation(conn: Connection[Any]) -> Generation | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM index_generations WHERE state = 'active'"
    ).fetchone()
    return _row(row) if row else None


def get_generation(conn: Connection[Any], generation_id: int) -> Generation | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM index_generations WHERE id = %s", (generation_id,)
    ).fetchone()
    return _row(row) if row else None


def all_generations(conn: Connection[Any]) -> list[Generation]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM index_generations ORDER BY id").fetchall()
    return [_row(r) for r in rows]


def vector_table(generation: Generation) -> sql.Identifier:
    """Where the generation's vectors live (a column `embedding` keyed by chunk_id)."""
    return sql.Identifier(generation.storage)


# A new generation's own table, under the same row-level security as chunks. Its HNSW
# index is built once the table is filled (build_index): one bulk build instead of a
# graph insert per vector, and nothing searches the generation before then.
_TABLE: LiteralString = """
CREATE TABLE IF NOT EXISTS {table} (
    chunk_id text PRIMARY KEY REFERENCES chunks ON DELETE CASCADE,
    tenant_id text NOT NULL
        DEFAULT coalesce(nullif(current_setting('ragchat.tenant', true), ''), 'default'),
    embedding vector({dim}) NOT NULL
);
"""
# m / ef_construction as for chunks (README, "Search at scale").
_INDEX: LiteralString = """
CREATE INDEX CONCURRENTLY IF NOT EXISTS {index} ON {table}
    USING hnsw (embedding vector_cosine_ops) WITH (m = 24, ef_construction = 128)
"""


def create_generation(
    conn: Connection[Any], model_uri: str, model_id: str, dim: int
) -> Generation:
    """Add a `building` generation and its table (run as the tables' owner, in one
    transaction with the caller's other changes)."""
    from services.common.rls import policies_for  # rls imports nothing of ours

    conn.execute("LOCK TABLE index_generations IN EXCLUSIVE MODE")
    row = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM index_generations").fetchone()
    generation_id = int(row[0]) if row else 1
    table = storage_name(generation_id)
    conn.execute(sql.SQL(_TABLE).format(table=sql.Identifier(table),
                                        dim=sql.Literal(int(dim))))
    conn.execute(policies_for([table]))
    conn.execute(
        "INSERT INTO index_generations (id, model_uri, model_id, dim, state, storage)"
        " VALUES (%s, %s, %s, %s, 'building', %s)",
        (generation_id, model_uri, model_id, int(dim), table))
    found = get_generation(conn, generation_id)
    assert found is not None
    return found


def build_index(conn: Connection[Any], generation: Generation) -> None:
    """Build the generation's HNSW index without blocking writes (CONCURRENTLY: `conn`
    must be in autocommit mode). An invalid index left by an interrupted build is
    dropped and built again."""
    name = f"{generation.storage}_hnsw_idx"
    row = conn.execute("SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = "
                       "to_regclass(%s)", (name,)).fetchone()
    if row is not None and not row[0]:
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
            sql.Identifier(name)))
    conn.execute(sql.SQL(_INDEX).format(index=sql.Identifier(name),
                                        table=vector_table(generation)))


def set_state(conn: Connection[Any], generation_id: int, state: str, detail: str = "") -> None:
    conn.execute("UPDATE index_generations SET state = %s, detail = %s WHERE id = %s",
                 (state, detail, generation_id))


def switch_active(conn: Connection[Any], generation_id: int) -> Generation | None:
    """Make `generation_id` the active generation in the caller's transaction; returns
    the generation it replaced (now retired), whose vectors are still to be dropped."""
    conn.execute("LOCK TABLE index_generations IN EXCLUSIVE MODE")
    old = active_generation(conn)
    if old is not None:
        conn.execute("UPDATE index_generations SET state = 'retired', retired_at = now()"
                     " WHERE id = %s", (old.id,))
    conn.execute("UPDATE index_generations SET state = 'active', activated_at = now(),"
                 " detail = '' WHERE id = %s", (generation_id,))
    return old


def drop_vectors(conn: Connection[Any], generation: Generation) -> None:
    """Drop a retired or failed generation's vectors (generation 1: the column)."""
    if generation.in_chunks:
        conn.execute("DROP INDEX IF EXISTS chunks_embedding_hnsw_idx")
        conn.execute("ALTER TABLE chunks DROP COLUMN IF EXISTS embedding")
    else:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(vector_table(generation)))
