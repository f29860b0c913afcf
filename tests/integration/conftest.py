"""Fixtures for the application schema (384-d) on the session's embedded PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from devstack.embedded import ensure_bucket_and_queue
from services.common.db import migrate, open_pool
from services.common.embeddings import EmbeddingProvider, SentenceTransformerEmbeddings
from services.common.vectorstore.base import VectorStore
from services.common.vectorstore.factory import build_vector_store
from services.common.vectorstore.pgvector import PgVectorStore

APP_TABLES = "documents, jobs, chunks, sessions, turns, request_log"
SMALL_DIM = 8  # vector width of the store-level tests


@pytest.fixture(scope="session")
def app_pool(postgres: Any) -> Iterator[ConnectionPool]:
    migrate(postgres.dsn, 384)
    pool = open_pool(postgres.dsn, max_size=4)
    yield pool
    pool.close()


@pytest.fixture
def clean_pool(app_pool: ConnectionPool) -> ConnectionPool:
    """The migrated database, emptied before the test."""
    with app_pool.connection() as conn:
        conn.execute(f"TRUNCATE {APP_TABLES} CASCADE")
    return app_pool


@pytest.fixture(scope="session")
def embeddings() -> EmbeddingProvider:
    """The real packaged all-MiniLM-L6-v2, loaded once per session."""
    return SentenceTransformerEmbeddings()


@pytest.fixture
def aws(moto: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh bucket and queue on the moto server; returns settings env values."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    name = f"t{uuid.uuid4().hex[:12]}"
    queue_url = ensure_bucket_and_queue(moto.endpoint_url, name, name)
    return {
        "s3_endpoint_url": moto.endpoint_url,
        "sqs_endpoint_url": moto.endpoint_url,
        "s3_bucket": name,
        "sqs_queue_url": queue_url,
    }


@pytest.fixture(scope="session")
def pg_pool(make_database: Callable[[str], str]) -> Iterator[ConnectionPool]:
    """A database of its own, so its small-vector schema never meets the 384-d one."""
    dsn = make_database("vectorstore_tests")
    migrate(dsn, SMALL_DIM)
    pool = open_pool(dsn, max_size=4)
    yield pool
    pool.close()


@pytest.fixture(params=["pgvector", "chroma"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> VectorStore:
    if request.param == "pgvector":
        pool: ConnectionPool = request.getfixturevalue("pg_pool")
        with pool.connection() as conn:
            conn.execute("TRUNCATE documents CASCADE")
        return build_vector_store("pgvector", pool=pool)
    return build_vector_store("chroma", chroma_path=str(tmp_path / "chroma"))


@pytest.fixture
def analyze(request: pytest.FixtureRequest, store: VectorStore) -> Callable[[], None]:
    """Refresh planner statistics, as autovacuum would in production (no-op for Chroma)."""

    def run() -> None:
        if isinstance(store, PgVectorStore):
            pool: ConnectionPool = request.getfixturevalue("pg_pool")
            with pool.connection() as conn:
                conn.execute("ANALYZE")

    return run
