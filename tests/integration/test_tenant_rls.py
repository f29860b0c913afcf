"""The database enforces tenants by itself, and one tenant's corpus never shapes another's
BM25 scores (PostgreSQL and Chroma)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from services.common.db import migrate, open_pool
from services.common.embeddings import EmbeddingProvider
from services.common.idempotency import RequestKey
from services.common.rls import APP_ROLE, RLS_TABLES
from services.common.tenancy import tenant_scope
from services.common.types import DocumentMeta, HistoryTurn
from services.common.vectorstore.factory import build_vector_store
from services.ingest.chunking import TokenChunker
from services.ingest.pipeline import IndexingPipeline
from tests.support.tenants import TenantStack, tenant_stack


@pytest.fixture
async def stack(clean_pool: Any, postgres: Any, embeddings: EmbeddingProvider,
                aws: dict[str, str]) -> AsyncIterator[TenantStack]:
    async with tenant_stack(postgres.dsn, embeddings, aws) as running:
        yield running


def _fill(stack: TenantStack, tenant: str) -> None:
    """One row of every tenant table, written by the services' own code as `tenant`."""
    with tenant_scope(tenant):
        stack.submissions.accept(f"{tenant}.txt", "text/plain",
                                 f"The {tenant} lighthouse keeper feeds the seals.".encode(),
                                 document_key="handbook", request_id="upload-1")
        session = stack.sessions.create(RequestKey("CreateSession", f"create-{tenant}", "f"))
        stack.sessions.append(session.session_id, [HistoryTurn("user", "hello")])
    stack.index_all()


def _counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    return {table: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
        sql.Identifier(table))).fetchone()[0] for table in RLS_TABLES}  # type: ignore[index]


def test_the_service_role_sees_no_rows_without_a_tenant_and_only_its_tenants_with_one(
    stack: TenantStack, postgres: Any,
) -> None:
    _fill(stack, "acme")
    _fill(stack, "globex")
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        everything = _counts(conn)  # the owner (a superuser here) sees both tenants
        assert all(n > 0 for n in everything.values()), everything
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(APP_ROLE)))
        assert _counts(conn) == dict.fromkeys(RLS_TABLES, 0)  # a query without a tenant
        conn.execute("SELECT set_config('ragchat.tenant', 'acme', false)")
        acme = _counts(conn)
        assert all(n > 0 for n in acme.values()), acme
        for table in RLS_TABLES:
            tenants = conn.execute(sql.SQL("SELECT DISTINCT tenant_id FROM {}").format(
                sql.Identifier(table))).fetchall()
            assert tenants == [("acme",)], table
        conn.execute("SELECT set_config('ragchat.tenant', 'globex', false)")
        assert {t: acme[t] + n for t, n in _counts(conn).items()} == everything
        # Writing for another tenant, or emptying a table wholesale, is refused.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO sessions (session_id, tenant_id) VALUES ('x', 'acme')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("TRUNCATE sessions CASCADE")
    # Both tenants chose the same document_key and request id: per tenant, so a second
    # migration (every start of the embedded stack) finds nothing to refuse.
    migrate(postgres.dsn, 384)


@pytest.fixture(params=["pgvector", "chroma"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "pgvector":
        request.getfixturevalue("clean_pool")
        pool = open_pool(request.getfixturevalue("postgres").dsn, max_size=2, role=APP_ROLE)
        request.addfinalizer(pool.close)
        return build_vector_store("pgvector", pool=pool)
    return build_vector_store("chroma", chroma_path=str(tmp_path / "chroma"))


def test_bm25_scores_of_one_tenant_do_not_move_when_another_tenant_ingests(
    backend: Any, embeddings: EmbeddingProvider
) -> None:
    pipeline = IndexingPipeline(embeddings, TokenChunker.for_embeddings(embeddings, 64, 8),
                                backend)

    def index(tenant: str, doc_id: str, text: str) -> None:
        with tenant_scope(tenant):
            pipeline.index_text(DocumentMeta(doc_id, doc_id, f"{doc_id}.txt", "text/plain"),
                                text)

    def scores(tenant: str) -> list[tuple[str, float]]:
        with tenant_scope(tenant):
            hits = backend.keyword_search("lighthouse seals harbour", 10)
        return [(h.chunk_id, round(h.score, 9)) for h in hits]

    index("acme", "a1", "The lighthouse keeper feeds the harbour seals at dawn.")
    index("acme", "a2", "Seals rest on the rocks below the old lighthouse.")
    index("acme", "a3", "Invoices are due within thirty days of delivery.")
    before = scores("acme")
    assert len(before) == 2
    # Another tenant's corpus, dense with the same terms (it would change N, df and avgdl).
    for n in range(12):
        index("globex", f"g{n}", "lighthouse " * (n + 1) + "seals harbour lighthouse seals")
    assert scores("acme") == before
    assert {cid.split(":")[0] for cid, _ in scores("globex")} <= {f"g{n}" for n in range(12)}
