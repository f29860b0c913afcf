"""The application's tables (before tenancy: services.common.rls adds tenant_id and RLS)."""

from __future__ import annotations

from typing import LiteralString

SCHEMA: LiteralString = """
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
-- No column once a reindex has retired generation 1 (services/common/generations.py).
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'chunks'::regclass
               AND attname = 'embedding' AND NOT attisdropped) THEN
        CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw_idx ON chunks
            USING hnsw (embedding vector_cosine_ops) WITH (m = 24, ef_construction = 128);
    END IF;
END $$;
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
-- document_key is unique per tenant: services.common.rls creates that index.
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
