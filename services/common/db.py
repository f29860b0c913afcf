"""PostgreSQL access: the connection pool and the idempotent schema migration."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, LiteralString

import psycopg
import psycopg.conninfo
from pgvector.psycopg import register_vector
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from services.common.errors import Unavailable
from services.common.health import Probe
from services.common.vectorstore.pg_bm25 import schema as bm25_schema

if TYPE_CHECKING:
    from services.common.settings import DatabaseSettings

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
-- m / ef_construction chosen with benchmarks/scale.py (README, "Search at scale").
CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw_idx
    ON chunks USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
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
-- Session titles and last activity (the memory service's ListSessions/UpdateSession);
-- existing sessions get their first question as title and their last turn's time.
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS title text NOT NULL DEFAULT '';
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = 'sessions'
                   AND column_name = 'updated_at') THEN
        ALTER TABLE sessions ADD COLUMN updated_at timestamptz;
        UPDATE sessions s SET
            updated_at = coalesce((SELECT max(t.created_at) FROM turns t
                                   WHERE t.session_id = s.session_id), s.created_at),
            title = coalesce((SELECT left(regexp_replace(btrim(t.content), '[[:space:]]+',
                                                         ' ', 'g'), 80) FROM turns t
                              WHERE t.session_id = s.session_id AND t.role = 'user'
                              ORDER BY t.seq LIMIT 1), '');
        ALTER TABLE sessions ALTER COLUMN updated_at SET DEFAULT now(),
            ALTER COLUMN updated_at SET NOT NULL;
    END IF;
END $$;
-- Keyset paging of ListSessions: (updated_at, session_id) scanned backwards.
CREATE INDEX IF NOT EXISTS sessions_updated_at_id_idx ON sessions (updated_at, session_id);

-- Versions: documents.version is the latest uploaded version; a job indexes one version
-- and may commit only while it is still the latest (checked under the row lock).
ALTER TABLE documents ADD COLUMN IF NOT EXISTS version int NOT NULL DEFAULT 1;
ALTER TABLE documents ADD COLUMN IF NOT EXISTS document_key text;
CREATE UNIQUE INDEX IF NOT EXISTS documents_document_key_idx ON documents (document_key);
-- Keyset paging: (created_at, document_id) scanned backwards.
CREATE INDEX IF NOT EXISTS documents_created_at_id_idx ON documents (created_at, document_id);
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS version int NOT NULL DEFAULT 1;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'jobs_status_check'
                   AND position('superseded' in pg_get_constraintdef(oid)) > 0) THEN
        ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_status_check;
        ALTER TABLE jobs ADD CONSTRAINT jobs_status_check CHECK (status IN
            ('queued', 'processing', 'indexed', 'failed', 'superseded'));
    END IF;
END $$;
CREATE TABLE IF NOT EXISTS document_versions (
    document_id text NOT NULL REFERENCES documents ON DELETE CASCADE,
    version int NOT NULL,
    sha256 text NOT NULL,
    size_bytes bigint NOT NULL,
    object_key text NOT NULL,
    content_type text NOT NULL,
    source text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (document_id, version)
);
INSERT INTO document_versions
    (document_id, version, sha256, size_bytes, object_key, content_type, source, created_at)
SELECT d.document_id, d.version, d.sha256, d.size_bytes, d.object_key, d.content_type,
       d.source, d.created_at
FROM documents d WHERE d.object_key <> '' AND NOT EXISTS
    (SELECT 1 FROM document_versions v WHERE v.document_id = d.document_id);
-- Idempotency-Key of an upload -> what it created; gone with the document.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    request_id text PRIMARY KEY,
    request_hash text NOT NULL,
    document_id text NOT NULL REFERENCES documents ON DELETE CASCADE,
    job_id text NOT NULL,
    version int NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- request_id of the other mutating RPCs -> their first outcome (services/common/idempotency).
CREATE TABLE IF NOT EXISTS request_log (
    method text NOT NULL,
    request_id text NOT NULL,
    fingerprint text NOT NULL,
    outcome jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (method, request_id)
);
CREATE INDEX IF NOT EXISTS request_log_created_at_idx ON request_log (created_at);
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
        conn.execute(bm25_schema())
    logger.info("schema ready (embedding dimension %d)", embedding_dim)


def chunks_dimension(conn: psycopg.Connection) -> int | None:
    """The declared dimension of chunks.embedding, or None if the table does not exist."""
    row = conn.execute(
        "SELECT a.atttypmod FROM pg_attribute a"
        " WHERE a.attrelid = to_regclass('chunks') AND a.attname = 'embedding'"
        " AND NOT a.attisdropped"
    ).fetchone()
    return int(row[0]) if row is not None else None


class Pool(ConnectionPool):
    """A pool that fails fast: while the database is known to be down (`healthy` is
    False, set by the health probe) or a connection cannot be had within the pool
    timeout, callers get Unavailable at once instead of hanging."""

    healthy: bool = True

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection]:
        if not self.healthy:
            raise Unavailable("the database is unavailable")
        try:
            with super().connection(timeout) as conn:
                yield conn
        except (PoolTimeout, pg_errors.QueryCanceled, psycopg.OperationalError) as exc:
            raise Unavailable(f"the database is unavailable ({type(exc).__name__})") from exc

    def probe(self, timeout_s: float) -> None:
        """Raise unless a fresh connection answers; then drop broken pooled connections.

        A fresh connection (not the pool's) tells the truth at once after a restart,
        where the pool would wait for its reconnection backoff.
        """
        conninfo = psycopg.conninfo.make_conninfo(
            self.conninfo, connect_timeout=max(1, int(timeout_s))
        )
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            self.healthy = False
            raise
        if not self.healthy:
            self.check()  # replace connections broken by the outage before serving again
            self.healthy = True


def open_pool(
    dsn: str,
    min_size: int = 1,
    max_size: int = 8,
    *,
    connect_timeout_s: float = 3.0,
    pool_timeout_s: float = 1.0,
    statement_timeout_s: float | None = None,
    create_extension: bool = True,
) -> Pool:
    """An open pool whose connections understand `vector` (numpy arrays in and out).

    `create_extension` creates pgvector if it is missing (the embedded stack); without
    it a missing extension is an error naming the migration command (production).
    """
    _ensure_vector_extension(dsn, create_extension)
    options = {"connect_timeout": max(1, int(connect_timeout_s))}
    if statement_timeout_s:
        options["options"] = f"-c statement_timeout={int(statement_timeout_s * 1000)}"
    conninfo = psycopg.conninfo.make_conninfo(dsn, **options)
    pool = Pool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        configure=_configure,
        check=ConnectionPool.check_connection,  # survive a database restart
        timeout=pool_timeout_s,
        # Give up a failed reconnection quickly: the next request then starts a fresh
        # attempt, instead of waiting out an exponential backoff after an outage.
        reconnect_timeout=max(2.0, connect_timeout_s),
        open=False,
        name="ragchat",
    )
    pool.open(wait=True, timeout=30)
    return pool


def open_pool_from(settings: DatabaseSettings, max_size: int | None = None) -> Pool:
    """The pool of a service, with the timeouts and migration policy of its settings."""
    return open_pool(
        settings.database_dsn(),
        max_size=max_size or settings.db_pool_max,
        connect_timeout_s=settings.db_connect_timeout_s,
        pool_timeout_s=settings.db_pool_timeout_s,
        statement_timeout_s=settings.db_statement_timeout_s,
        create_extension=settings.should_migrate(),
    )


def _configure(conn: psycopg.Connection) -> None:
    register_vector(conn)
    conn.commit()  # registration queried the catalog; hand the pool an idle connection


def _ensure_vector_extension(dsn: str, create: bool) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_type WHERE typname = 'vector'").fetchone():
            return
        if not create:
            raise RuntimeError(
                "the pgvector extension is missing; run `python -m services.common.migrate`"
            )
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except pg_errors.InsufficientPrivilege as exc:
            raise RuntimeError(
                "the pgvector extension is not installed in this database and this user "
                "may not create it; run CREATE EXTENSION vector as a superuser"
            ) from exc


def prepare_database(settings: DatabaseSettings) -> Pool:
    """Migrate (where the settings allow it: never in production) and open the pool."""
    if settings.should_migrate():
        migrate(settings.database_dsn(), settings.embedding_dim)
    return open_pool_from(settings)


def postgres_probe(pool: Pool, timeout_s: float) -> Probe:
    """The health probe of a service that needs PostgreSQL."""
    return Probe("postgres", lambda: pool.probe(timeout_s))
