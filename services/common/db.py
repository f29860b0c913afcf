"""PostgreSQL access: the connection pool and the idempotent schema migration."""

from __future__ import annotations

import logging
from typing import LiteralString

import psycopg
from pgvector.psycopg import register_vector
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg_pool import ConnectionPool

logger = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every process that migrates.
_MIGRATION_LOCK_KEY = 0x72616763686174  # "ragchat"
_MAX_DIM = 2000  # the largest dimension an HNSW index on `vector` accepts

_SCHEMA: LiteralString = """
CREATE TABLE IF NOT EXISTS documents (
    document_id text PRIMARY KEY,
    title text NOT NULL,
    source text NOT NULL,
    content_type text NOT NULL,
    size_bytes bigint NOT NULL DEFAULT 0,
    sha256 text NOT NULL DEFAULT '',
    tags text[] NOT NULL DEFAULT '{{}}',
    object_key text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS documents_created_at_idx ON documents (created_at);
CREATE INDEX IF NOT EXISTS documents_tags_idx ON documents USING gin (tags);

CREATE TABLE IF NOT EXISTS jobs (
    job_id text PRIMARY KEY,
    document_id text NOT NULL REFERENCES documents ON DELETE CASCADE,
    status text NOT NULL CHECK (status IN ('queued', 'processing', 'indexed', 'failed')),
    error text NOT NULL DEFAULT '',
    attempts int NOT NULL DEFAULT 0,
    chunk_count int NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS jobs_document_id_idx ON jobs (document_id);
CREATE INDEX IF NOT EXISTS jobs_status_updated_at_idx ON jobs (status, updated_at);

CREATE TABLE IF NOT EXISTS chunks (
    chunk_id text PRIMARY KEY,
    document_id text NOT NULL REFERENCES documents ON DELETE CASCADE,
    ordinal int NOT NULL,
    text text NOT NULL,
    embedding vector({dim}) NOT NULL,
    UNIQUE (document_id, ordinal)
);
-- Keyword search. The stored generated column is computed by the INSERT that writes the
-- vectors, so it always lives in the same transaction; ADD COLUMN backfills old rows.
-- tsv_length counts the indexed tokens (stopwords excluded): BM25's document length.
CREATE OR REPLACE FUNCTION ragchat_tsv_length(tsvector) RETURNS int
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS 'SELECT coalesce(sum(coalesce(array_length(positions, 1), 1)), 0)::int FROM unnest($1)';
ALTER TABLE chunks ADD COLUMN IF NOT EXISTS tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('english', text)) STORED;
ALTER TABLE chunks ADD COLUMN IF NOT EXISTS tsv_length int
    GENERATED ALWAYS AS (ragchat_tsv_length(to_tsvector('english', text))) STORED;
-- Where in its document a chunk came from: page (1-based) and heading path.
ALTER TABLE chunks ADD COLUMN IF NOT EXISTS page int;
ALTER TABLE chunks ADD COLUMN IF NOT EXISTS heading text NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS chunks_tsv_gin_idx ON chunks USING gin (tsv);
CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw_idx
    ON chunks USING hnsw (embedding vector_cosine_ops);
CREATE INDEX IF NOT EXISTS chunks_document_id_idx ON chunks (document_id);

CREATE TABLE IF NOT EXISTS sessions (
    session_id text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS turns (
    session_id text NOT NULL REFERENCES sessions ON DELETE CASCADE,
    seq int NOT NULL,
    role text NOT NULL CHECK (role IN ('user', 'assistant')),
    content text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, seq)
);
"""


def migrate(dsn: str, embedding_dim: int) -> None:
    """Create the extension, tables and indexes if missing; safe to run concurrently.

    Raises RuntimeError if `chunks` already exists with another vector dimension.
    """
    if not 1 <= int(embedding_dim) <= _MAX_DIM:
        raise ValueError(f"embedding_dim must be between 1 and {_MAX_DIM}, got {embedding_dim}")
    with psycopg.connect(dsn) as conn, conn.transaction():
        # Serialises concurrent start-ups; released when the transaction ends.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        existing = chunks_dimension(conn)
        if existing is not None and existing != embedding_dim:
            raise RuntimeError(
                f"table chunks stores {existing}-d vectors but the embedding model produces "
                f"{embedding_dim}-d vectors; re-index into a fresh database or use a model "
                f"with {existing} dimensions"
            )
        conn.execute(sql.SQL(_SCHEMA).format(dim=sql.Literal(int(embedding_dim))))
    logger.info("schema ready (embedding dimension %d)", embedding_dim)


def chunks_dimension(conn: psycopg.Connection) -> int | None:
    """The declared dimension of chunks.embedding, or None if the table does not exist."""
    row = conn.execute(
        "SELECT a.atttypmod FROM pg_attribute a"
        " WHERE a.attrelid = to_regclass('chunks') AND a.attname = 'embedding'"
        " AND NOT a.attisdropped"
    ).fetchone()
    return int(row[0]) if row is not None else None


def open_pool(dsn: str, min_size: int = 1, max_size: int = 8) -> ConnectionPool:
    """An open pool whose connections understand `vector` (numpy arrays in and out).

    Creates the vector extension first if it is missing, since registration needs the type.
    """
    _ensure_vector_extension(dsn)
    pool = ConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        configure=_configure,
        check=ConnectionPool.check_connection,  # survive a database restart
        open=False,
        name="ragchat",
    )
    pool.open(wait=True, timeout=30)
    return pool


def _configure(conn: psycopg.Connection) -> None:
    register_vector(conn)
    conn.commit()  # registration queried the catalog; hand the pool an idle connection


def _ensure_vector_extension(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_type WHERE typname = 'vector'").fetchone():
            return
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except pg_errors.InsufficientPrivilege as exc:
            raise RuntimeError(
                "the pgvector extension is not installed in this database and this user "
                "may not create it; run CREATE EXTENSION vector as a superuser"
            ) from exc
