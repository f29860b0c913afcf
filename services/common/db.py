"""PostgreSQL access: the connection pool and the idempotent schema migration."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING

import psycopg
import psycopg.conninfo
from pgvector.psycopg import register_vector
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from services.common.errors import Unavailable
from services.common.generations import SCHEMA as GENERATIONS_SCHEMA
from services.common.health import Probe
from services.common.rls import MAINTENANCE_ROLE, TENANT_SETTING
from services.common.rls import statements as rls_statements
from services.common.schema import SCHEMA
from services.common.tenancy import tenant_or_none
from services.common.vectorstore.pg_bm25 import schema as bm25_schema

if TYPE_CHECKING:
    from services.common.settings import DatabaseSettings

logger = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every process that migrates.
_MIGRATION_LOCK_KEY = 0x72616763686174  # "ragchat"
_MAX_DIM = 2000  # the largest dimension an HNSW index on `vector` accepts



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
        conn.execute(sql.SQL(SCHEMA).format(dim=sql.Literal(int(embedding_dim))))
        columns, roles, policies = rls_statements()
        conn.execute(columns)
        conn.execute(roles)
        conn.execute(bm25_schema())
        conn.execute(policies)
        conn.execute(GENERATIONS_SCHEMA)
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
    timeout, callers get Unavailable at once instead of hanging.

    Each checkout is one transaction acting for the current tenant (row-level
    security reads `ragchat.tenant`, set here with SET LOCAL); outside any tenant
    scope it acts for none and sees no tenant's rows. That first statement is also
    the checkout's liveness check: a connection broken by a database restart fails
    it and is replaced, so no separate check costs a round trip per checkout.
    """

    healthy: bool = True

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection]:
        if not self.healthy:
            raise Unavailable("the database is unavailable")
        try:
            conn = self._for_tenant(timeout)
            try:
                with conn:  # commit, or roll back on error, as the base pool does
                    yield conn
            finally:
                self.putconn(conn)
        except (PoolTimeout, pg_errors.QueryCanceled, psycopg.OperationalError) as exc:
            raise Unavailable(f"the database is unavailable ({type(exc).__name__})") from exc

    def _for_tenant(self, timeout: float | None) -> psycopg.Connection:
        """A pooled connection whose transaction acts for the current tenant; broken
        connections (all of them, after a restart) are handed back to be replaced."""
        tenant = tenant_or_none()
        for attempt in range(self.max_size + 1):
            conn = self.getconn(timeout)
            try:
                set_tenant(conn, tenant)
                return conn
            except psycopg.OperationalError:
                self.putconn(conn)  # closed or broken: the pool opens a new one
                if attempt == self.max_size:
                    raise
            except BaseException:
                self.putconn(conn)
                raise
        raise AssertionError("unreachable")

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


def set_tenant(conn: psycopg.Connection, tenant: str | None) -> None:
    """SET LOCAL ragchat.tenant for the connection's (new) transaction; None: no tenant."""
    conn.execute("SELECT set_config(%s, %s, true)", (TENANT_SETTING, tenant or ""))


@contextmanager
def maintenance_connection(pool: ConnectionPool) -> Iterator[psycopg.Connection]:
    """A connection whose transaction acts for every tenant: background upkeep only.

    It switches (SET LOCAL ROLE) to the maintenance role, whose policy sees all rows.
    """
    with pool.connection() as conn:
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(MAINTENANCE_ROLE)))
        yield conn


def open_pool(
    dsn: str,
    min_size: int = 1,
    max_size: int = 8,
    *,
    connect_timeout_s: float = 3.0,
    pool_timeout_s: float = 1.0,
    statement_timeout_s: float | None = None,
    create_extension: bool = True,
    role: str = "",
) -> Pool:
    """An open pool whose connections understand `vector` (numpy arrays in and out).

    `create_extension` creates pgvector if it is missing (the embedded stack); without
    it a missing extension is an error naming the migration command (production).
    `role`: the connections SET ROLE to it (the services' non-owner role, so that
    row-level security applies even when they log in as the owner).
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
        configure=partial(_configure, role=role),
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
        role=settings.db_role,
    )


def _configure(conn: psycopg.Connection, role: str = "") -> None:
    register_vector(conn)
    if role:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
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
