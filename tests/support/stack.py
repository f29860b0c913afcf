"""Session fixtures for the real local infrastructure: PostgreSQL+pgvector and moto.

Loaded by tests/conftest.py through `pytest_plugins`, so every test package sees them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from devstack.embedded import EmbeddedMoto, EmbeddedPostgres, start_moto, start_postgres
from services.common.db import migrate

APP_EMBEDDING_DIM = 384  # all-MiniLM-L6-v2, the default model
APP_TABLES = "documents, jobs, chunks, sessions, turns"


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """One PostgreSQL server for the session; its database `ragchat` is at `.dsn`."""
    server = start_postgres(tmp_path_factory.mktemp("postgres") / "data")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto() -> Iterator[EmbeddedMoto]:
    """One moto S3+SQS server for the session, at `.endpoint_url`."""
    server = start_moto()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def make_database(postgres: EmbeddedPostgres) -> Callable[[str], str]:
    """Creates (once) a database with pgvector on the session server; returns its DSN.

    For tests that need their own schema, e.g. a vector dimension other than 384.
    """
    return postgres.create_database


@pytest.fixture
def clean_db(postgres: EmbeddedPostgres) -> str:
    """The DSN of `ragchat`, migrated for 384-d vectors and emptied before the test."""
    migrate(postgres.dsn, APP_EMBEDDING_DIM)
    with psycopg.connect(postgres.dsn) as conn:
        conn.execute(f"TRUNCATE {APP_TABLES} CASCADE")
    return postgres.dsn
