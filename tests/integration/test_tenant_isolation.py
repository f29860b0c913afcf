"""Tenants never see each other: a property test through every gRPC method of ingest,
retrieval and memory, and the rejection of calls that name no tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from ragchat.common.v1 import common_pb2
from ragchat.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from ragchat.memory.v1 import memory_pb2, memory_pb2_grpc
from ragchat.retrieval.v1 import retrieval_pb2, retrieval_pb2_grpc

from services.common.embeddings import EmbeddingProvider
from services.common.errors import error_info
from tests.support.tenants import TenantStack, as_tenant, tenant_stack

WORDS = ("lighthouse", "harbour", "seals", "relay", "cooling", "sourdough", "starter",
         "invoice", "leave", "policy", "tower", "dawn")
TENANTS = st.lists(
    st.from_regex(r"[a-z0-9][a-z0-9_-]{0,12}", fullmatch=True), min_size=2, max_size=3,
    unique=True,
)
TEXTS = st.lists(st.sampled_from(WORDS), min_size=3, max_size=8).map(" ".join)
MODES = (retrieval_pb2.SEARCH_MODE_DENSE, retrieval_pb2.SEARCH_MODE_KEYWORD,
         retrieval_pb2.SEARCH_MODE_HYBRID)


@dataclass
class Owned:
    """What one tenant created: ids that no other tenant may ever see."""

    documents: set[str] = field(default_factory=set)
    jobs: set[str] = field(default_factory=set)
    sessions: set[str] = field(default_factory=set)

    def ids(self) -> set[str]:
        return self.documents | self.jobs | self.sessions


@pytest.fixture
async def stack(clean_pool: Any, postgres: Any, embeddings: EmbeddingProvider,
                aws: dict[str, str]) -> AsyncIterator[TenantStack]:
    async with tenant_stack(postgres.dsn, embeddings, aws) as running:
        yield running


def _mentions(message: Message, ids: set[str]) -> set[str]:
    """Which of `ids` appear anywhere in a response (every string field, recursively)."""
    text = str(message)
    return {i for i in ids if i in text}


async def _not_found(call: Any, request: Message, tenant: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(request, metadata=as_tenant(tenant))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND, caught.value.details()


async def _populate(stack: TenantStack, tenant: str, texts: list[str]) -> Owned:
    owned = Owned()
    for n, text in enumerate(texts):
        # The same document_key in every tenant: keys are per tenant, never shared.
        done = await stack.ingest.SubmitDocument(ingest_pb2.SubmitDocumentRequest(
            filename=f"{tenant}-{n}.txt", content_type="text/plain", content=text.encode(),
            document_key=f"shared-key-{n}"), metadata=as_tenant(tenant))
        owned.documents.add(done.document_id)
        owned.jobs.add(done.job_id)
    session = await stack.memory.CreateSession(memory_pb2.CreateSessionRequest(),
                                               metadata=as_tenant(tenant))
    await stack.memory.AppendTurns(memory_pb2.AppendTurnsRequest(
        session_id=session.session_id, turns=[common_pb2.Turn(
            role=common_pb2.ROLE_USER, content=f"question of {tenant}")],
    ), metadata=as_tenant(tenant))
    owned.sessions.add(session.session_id)
    return owned


async def _reads(stack: TenantStack, tenant: str, owned: Owned, query: str,
                 mode: int) -> list[Message]:
    """Every read a tenant can make, over its own ids."""
    meta = as_tenant(tenant)
    replies: list[Message] = [
        await stack.ingest.ListDocuments(ingest_pb2.ListDocumentsRequest(page_size=50),
                                         metadata=meta),
        await stack.retrieval.Search(retrieval_pb2.SearchRequest(
            query=query, top_k=20, mode=mode), metadata=meta),  # type: ignore[arg-type]
    ]
    for document_id in owned.documents:
        replies.append(await stack.ingest.GetDocument(
            ingest_pb2.GetDocumentRequest(document_id=document_id), metadata=meta))
    for job_id in owned.jobs:
        replies.append(await stack.ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job_id),
                                                 metadata=meta))
    for session_id in owned.sessions:
        replies.append(await stack.memory.GetSession(
            memory_pb2.GetSessionRequest(session_id=session_id), metadata=meta))
    return replies


async def _trespass(stack: TenantStack, tenant: str, theirs: Owned, query: str) -> None:
    """Every call on another tenant's ids answers NOT_FOUND (or nothing), never more."""
    for document_id in theirs.documents:
        await _not_found(stack.ingest.GetDocument,
                         ingest_pb2.GetDocumentRequest(document_id=document_id), tenant)
        await _not_found(stack.ingest.DeleteDocument,
                         ingest_pb2.DeleteDocumentRequest(document_id=document_id), tenant)
        aimed = await stack.retrieval.Search(retrieval_pb2.SearchRequest(
            query=query, top_k=5, filter=common_pb2.MetadataFilter(document_ids=[document_id])),
            metadata=as_tenant(tenant))
        assert not aimed.chunks
    for job_id in theirs.jobs:
        await _not_found(stack.ingest.GetJob, ingest_pb2.GetJobRequest(job_id=job_id), tenant)
    for session_id in theirs.sessions:
        await _not_found(stack.memory.GetSession,
                         memory_pb2.GetSessionRequest(session_id=session_id), tenant)
        await _not_found(stack.memory.AppendTurns, memory_pb2.AppendTurnsRequest(
            session_id=session_id, turns=[common_pb2.Turn(role=common_pb2.ROLE_USER,
                                                          content="mine now")]), tenant)
        await _not_found(stack.memory.DeleteSession,
                         memory_pb2.DeleteSessionRequest(session_id=session_id), tenant)


# No shrinking: every example drives the real stack, and a failure names its tenants.
@settings(max_examples=20, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(tenants=TENANTS, texts=st.lists(TEXTS, min_size=1, max_size=2),
       query=TEXTS, mode=st.sampled_from(MODES))
async def test_no_grpc_method_ever_shows_one_tenant_another_tenants_data(
    stack: TenantStack, postgres: Any, tenants: list[str], texts: list[str], query: str,
    mode: int,
) -> None:
    with psycopg.connect(postgres.dsn) as conn:  # the owner: a fresh world per example
        conn.execute("TRUNCATE documents, sessions, request_log CASCADE")
    owned = {tenant: await _populate(stack, tenant, texts) for tenant in tenants}
    assert stack.index_all() == len(tenants) * len(texts)
    leaks: list[tuple[str, set[str]]] = []
    for tenant in tenants:
        others = set().union(*(o.ids() for t, o in owned.items() if t != tenant))
        for reply in await _reads(stack, tenant, owned[tenant], query, mode):
            if found := _mentions(reply, others):
                leaks.append((tenant, found))
        for other in tenants:
            if other != tenant:
                await _trespass(stack, tenant, owned[other], query)
    assert leaks == []
    for tenant in tenants:  # and nothing another tenant tried changed what it owns
        listed = await stack.ingest.ListDocuments(ingest_pb2.ListDocumentsRequest(),
                                                  metadata=as_tenant(tenant))
        assert {d.document_id for d in listed.documents} == owned[tenant].documents
        assert all(d.status == ingest_pb2.JOB_STATUS_INDEXED for d in listed.documents)


STUBS: dict[str, Any] = {
    "ingest": ingest_pb2_grpc.IngestServiceStub,
    "retrieval": retrieval_pb2_grpc.RetrievalServiceStub,
    "memory": memory_pb2_grpc.MemoryServiceStub,
}
CALLS = [
    ("ingest", "ListDocuments", ingest_pb2.ListDocumentsRequest()),
    ("ingest", "GetJob", ingest_pb2.GetJobRequest(job_id="x")),
    ("retrieval", "Search", retrieval_pb2.SearchRequest(query="seals", top_k=1)),
    ("memory", "CreateSession", memory_pb2.CreateSessionRequest()),
]


@pytest.mark.parametrize("metadata", [(), (("x-ragchat-tenant", "../etc"),),
                                      (("x-ragchat-tenant", ""),)])
async def test_a_call_without_a_valid_tenant_is_rejected(
    stack: TenantStack, metadata: tuple[tuple[str, str], ...]
) -> None:
    # A bare channel: nothing adds the tenant of the test's scope.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.running.port}") as channel:
        for service, method, request in CALLS:
            stub = STUBS[service](channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await getattr(stub, method)(request, metadata=metadata)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, method
            info, _ = error_info(caught.value.trailing_metadata())
            assert info is not None and info.reason == "TENANT_MISSING"
        with psycopg.connect(stack.pool.conninfo) as conn:  # nothing was written
            assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
        # Health (and reflection) answer anyone: they show no tenant's data.
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""))
        assert health.status == health_pb2.HealthCheckResponse.SERVING

