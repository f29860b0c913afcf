"""Several tenants on one real stack: the services in-process on one gRPC port, acting
as the non-owner role `ragchat_app` (so row-level security binds them), with the real
worker indexing what they queue."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from ragchat.ingest.v1 import ingest_pb2_grpc
from ragchat.memory.v1 import memory_pb2_grpc
from ragchat.retrieval.v1 import retrieval_pb2_grpc

from services.common.aws import s3_client, sqs_client
from services.common.db import Pool, open_pool
from services.common.embeddings import EmbeddingProvider
from services.common.grpc_client import open_channel
from services.common.grpc_server import RunningServer, start_server
from services.common.rls import APP_ROLE
from services.common.tenancy import TENANT_METADATA_KEY
from services.common.vectorstore.pgvector import PgVectorStore
from services.ingest import servicer as ingest_servicer
from services.ingest.adapters import S3BlobStore, SqsJobQueue
from services.ingest.chunking import TokenChunker
from services.ingest.config import IngestSettings
from services.ingest.jobs import JobRepository
from services.ingest.pipeline import IndexingPipeline
from services.ingest.submission import Submissions
from services.ingest.worker import IndexWorker
from services.memory import servicer as memory_servicer
from services.memory.store import SessionStore
from services.retrieval import servicer as retrieval_servicer
from services.retrieval.search import Retriever, SearchPolicy


def as_tenant(tenant: str) -> tuple[tuple[str, str], ...]:
    """Call metadata naming `tenant` (what the gateway's client interceptor adds)."""
    return ((TENANT_METADATA_KEY, tenant),)


@dataclass
class TenantStack:
    """Stubs to ingest, retrieval and memory, the worker, and the role's pool."""

    pool: Pool
    running: RunningServer
    channel: grpc.aio.Channel
    worker: IndexWorker
    queue: SqsJobQueue
    submissions: Submissions
    sessions: SessionStore

    @property
    def ingest(self) -> ingest_pb2_grpc.IngestServiceStub:
        return ingest_pb2_grpc.IngestServiceStub(self.channel)

    @property
    def retrieval(self) -> retrieval_pb2_grpc.RetrievalServiceStub:
        return retrieval_pb2_grpc.RetrievalServiceStub(self.channel)

    @property
    def memory(self) -> memory_pb2_grpc.MemoryServiceStub:
        return memory_pb2_grpc.MemoryServiceStub(self.channel)

    def index_all(self) -> int:
        """Run the worker over every queued message (each acts as its own tenant)."""
        done = 0
        while messages := self.queue.receive(10, 0):
            for message in messages:
                self.worker.process(message)
                done += 1
        return done


@contextlib.asynccontextmanager
async def tenant_stack(
    dsn: str, embeddings: EmbeddingProvider, aws: dict[str, Any]
) -> AsyncIterator[TenantStack]:
    """The services on port 0 over a migrated database at `dsn` (see the module doc)."""
    pool = open_pool(dsn, max_size=4, role=APP_ROLE)
    settings = IngestSettings(**aws, chunk_tokens=40, chunk_overlap_tokens=8, sqs_wait_s=1)
    repo, store = JobRepository(pool), PgVectorStore(pool)
    blobs = S3BlobStore(s3_client(settings), settings.s3_bucket)
    queue = SqsJobQueue(sqs_client(settings), settings.sqs_queue_url)
    submissions = Submissions(repo, blobs, queue, store, settings.max_upload_bytes)
    pipeline = IndexingPipeline(embeddings, TokenChunker.for_embeddings(embeddings, 40, 8), store)
    sessions = SessionStore(pool)
    retriever = Retriever(embeddings, store, SearchPolicy(default_mode="hybrid"))
    running = await start_server("127.0.0.1:0", lambda s: [
        *ingest_servicer.register(s, submissions, repo),
        *retrieval_servicer.register(s, retriever),
        *memory_servicer.register(s, sessions),
    ])
    channel = open_channel(f"127.0.0.1:{running.port}")
    worker = IndexWorker(repo, blobs, queue, pipeline, settings)
    try:
        yield TenantStack(pool, running, channel, worker, queue, submissions, sessions)
    finally:
        await channel.close()
        await running.stop(0)
        pool.close()
