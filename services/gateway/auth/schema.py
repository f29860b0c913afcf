"""The gateway's own tables. They are not tenant-scoped by row-level security: the
gateway reads a key before it knows the tenant, and every query names the tenant."""

from __future__ import annotations

import logging
from typing import LiteralString

import psycopg

logger = logging.getLogger(__name__)

# Any constant; the same in every gateway that migrates at once.
_LOCK_KEY = 0x7261676175746800  # "ragauth"

SCHEMA: LiteralString = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id text PRIMARY KEY,
    key_hash text NOT NULL UNIQUE,  -- sha256 of the key; the key itself is never stored
    tenant text NOT NULL,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_tenant_idx ON api_keys (tenant, created_at);
-- NULL: the gateway's default (RAGCHAT_RATE_LIMIT_PER_MINUTE, ...); 0: unlimited.
CREATE TABLE IF NOT EXISTS tenant_limits (
    tenant text PRIMARY KEY,
    requests_per_minute int,
    uploads_per_hour int,
    storage_bytes bigint,
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- Raw bytes each accepted upload stored, until its document is deleted.
CREATE TABLE IF NOT EXISTS tenant_storage (
    tenant text NOT NULL,
    document_id text NOT NULL,
    version int NOT NULL,
    size_bytes bigint NOT NULL,
    request_id text NOT NULL DEFAULT '',  -- the upload's Idempotency-Key, if any
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, document_id, version)
);
CREATE INDEX IF NOT EXISTS tenant_storage_request_idx ON tenant_storage (tenant, request_id)
    WHERE request_id <> '';
-- Rate-limit windows when RAGCHAT_RATE_LIMIT_BACKEND=postgres (shared by every gateway).
CREATE UNLOGGED TABLE IF NOT EXISTS rate_windows (
    key_id text NOT NULL,
    limit_name text NOT NULL,
    window_start timestamptz NOT NULL,
    hits int NOT NULL,
    PRIMARY KEY (key_id, limit_name, window_start)
);
"""


def migrate(dsn: str) -> None:
    """Create the gateway's tables if missing; safe to run concurrently."""
    with psycopg.connect(dsn) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(SCHEMA)
    logger.info("gateway auth tables ready")
