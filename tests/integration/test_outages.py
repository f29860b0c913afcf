"""A PostgreSQL outage, on a server of this module's own: health tells the truth, calls
fail fast with UNAVAILABLE, uploads leave nothing behind, the worker survives, and
everything recovers within seconds of the database coming back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ragchat.memory.v1 import memory_pb2, memory_pb2_grpc

from devstack.embedded import EmbeddedPostgres, start_postgres
from services.common.aws import s3_client, sqs_client
from services.common.db import Pool, migrate, open_pool, postgres_probe
from services.common.embeddings import EmbeddingProvider
from services.common.errors import Unavailable
from services.common.grpc_client import open_channel
from services.common.grpc_server import start_server
from services.common.health import HealthMonitor
from services.common.vectorstore.pgvector import PgVectorStore
from services.ingest.adapters import S3BlobStore, SqsJobQueue
from services.ingest.chunking import TokenChunker
from services.ingest.config import IngestSettings
from services.ingest.jobs import JobRepository
from services.ingest.pipeline import IndexingPipeline
from services.ingest.submission import Submissions
from services.ingest.worker import IndexWorker
from services.memory import servicer as memory_servicer
from services.memory.store import SessionStore


class Database:
    """A PostgreSQL server that tests may stop and start again on the same port."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.server: EmbeddedPostgres = start_postgres(data_dir)
        self.port = self.server.port
        self.dsn = self.server.dsn
        migrate(self.dsn, 384)

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server = start_postgres(self.data_dir, port=self.port)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = Database(tmp_path_factory.mktemp("outage") / "pg")
    yield db
    db.stop()


@pytest.fixture
def pool(database: Database) -> Iterator[Pool]:
    with open_pool(database.dsn, max_size=4, pool_timeout_s=1.0, connect_timeout_s=2,
                   statement_timeout_s=5) as opened:
        with opened.connection() as conn:
            conn.execute("TRUNCATE documents, jobs, chunks, sessions, turns CASCADE")
        yield opened


async def _overall(stub: health_pb2_grpc.HealthStub) -> dict[str, str]:
    resp = await stub.List(health_pb2.HealthListRequest(), timeout=2)
    name = health_pb2.HealthCheckResponse.ServingStatus.Name
    return {k: name(v.status) for k, v in resp.statuses.items()}


async def _until(predicate: Any, timeout: float) -> float:
    """Seconds until the async predicate holds; fails after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if await predicate():
            return time.monotonic() - start
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {timeout}s")


async def test_health_and_calls_follow_a_database_outage(database: Database, pool: Pool) -> None:
    running = await start_server(
        "127.0.0.1:0", lambda s: memory_servicer.register(s, SessionStore(pool))
    )
    monitor = HealthMonitor(running.health, running.names, [postgres_probe(pool, 2)],
                            interval_s=0.5)
    await monitor.check_once()
    stop = asyncio.Event()
    probing = asyncio.create_task(monitor.run(stop))
    channel = open_channel(f"127.0.0.1:{running.port}")
    health = health_pb2_grpc.HealthStub(channel)
    memory = memory_pb2_grpc.MemoryServiceStub(channel)
    try:
        await _until(lambda: _is(health, "SERVING"), 5)
        assert (await _overall(health))["dependency/postgres"] == "SERVING"

        database.stop()
        await _until(lambda: _is(health, "NOT_SERVING"), 10)
        assert (await _overall(health))["dependency/postgres"] == "NOT_SERVING"
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await memory.CreateSession(memory_pb2.CreateSessionRequest(), timeout=10)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - started < 2.0  # fail fast, not a 10 s deadline

        database.start()

        async def answers() -> bool:
            try:
                await memory.CreateSession(memory_pb2.CreateSessionRequest(), timeout=2)
            except grpc.aio.AioRpcError:
                return False
            return True

        recovered = await _until(answers, 15)
        print(f"recovered {recovered:.1f}s after PostgreSQL came back")
        assert await _is(health, "SERVING")
    finally:
        stop.set()
        await probing
        await channel.close()
        await running.stop(0)


async def _is(stub: health_pb2_grpc.HealthStub, status: str) -> bool:
    return (await _overall(stub))[""] == status


@pytest.fixture
def ingest(pool: Pool, embeddings: EmbeddingProvider, aws: dict[str, str]) -> dict[str, Any]:
    settings = IngestSettings(**aws, chunk_tokens=40, chunk_overlap_tokens=8, sqs_wait_s=1)
    repo = JobRepository(pool)
    blobs = S3BlobStore(s3_client(settings), settings.s3_bucket)
    queue = SqsJobQueue(sqs_client(settings), settings.sqs_queue_url)
    store = PgVectorStore(pool)
    pipeline = IndexingPipeline(embeddings, TokenChunker.for_embeddings(embeddings, 40, 8), store)
    return {
        "settings": settings, "repo": repo, "blobs": blobs, "queue": queue, "store": store,
        "submissions": Submissions(repo, blobs, queue, store, settings.max_upload_bytes),
        "worker": IndexWorker(repo, blobs, queue, pipeline, settings, ready=lambda: pool.healthy),
    }


def _objects(aws: dict[str, str]) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=aws["s3_endpoint_url"], region_name="us-east-1")
    listing = s3.list_objects_v2(Bucket=aws["s3_bucket"])
    return [o["Key"] for o in listing.get("Contents", [])]


def test_an_upload_during_an_outage_fails_fast_and_stores_nothing(
    database: Database, pool: Pool, ingest: dict[str, Any], aws: dict[str, str]
) -> None:
    submissions: Submissions = ingest["submissions"]
    database.stop()
    try:
        # Not yet noticed by a probe: the write fails within the pool timeout and the
        # raw file already put in S3 is removed again.
        started = time.monotonic()
        with pytest.raises(Unavailable):
            submissions.submit("a.txt", "text/plain", b"some text about harbours")
        assert time.monotonic() - started < 2.0
        assert _objects(aws) == []
        # Once the probe has noticed, nothing is even attempted.
        with pytest.raises(Exception):  # noqa: B017 - the probe's own connection error
            pool.probe(1)
        started = time.monotonic()
        with pytest.raises(Unavailable):
            submissions.submit("b.txt", "text/plain", b"more text about harbours")
        assert time.monotonic() - started < 0.5
        assert _objects(aws) == []
    finally:
        database.start()
    pool.probe(2)
    job_id, _ = submissions.submit("c.txt", "text/plain", b"text after the outage")
    assert ingest["repo"].get(job_id).status == "queued"


async def test_the_worker_survives_an_outage_and_indexes_afterwards(
    database: Database, pool: Pool, ingest: dict[str, Any]
) -> None:
    submissions: Submissions = ingest["submissions"]
    job_id, doc_id = submissions.submit("port.txt", "text/plain",
                                        b"The harbour of Port Aven handled fish. " * 20)
    database.stop()  # the worker meets the outage with a message in hand
    stop = asyncio.Event()
    worker = asyncio.create_task(ingest["worker"].run(stop))
    try:
        await asyncio.sleep(4)
        assert not worker.done(), "the worker loop died in the outage"
        database.start()
        pool.probe(2)

        async def indexed() -> bool:
            job = await asyncio.to_thread(ingest["repo"].get, job_id)
            return bool(job.status == "indexed")

        await _until(indexed, 40)
        assert ingest["store"].count_chunks(doc_id) >= 1
    finally:
        stop.set()
        await asyncio.wait_for(worker, 15)


async def test_the_gateway_channel_does_not_retry_a_server_that_says_unavailable(
    database: Database, pool: Pool
) -> None:
    """The server answered UNAVAILABLE because its database is down: retrying at once
    cannot help, so the caller gets the error after one pool timeout, not three."""
    from services.common.grpc_client import open_channel

    running = await start_server(
        "127.0.0.1:0", lambda s: memory_servicer.register(s, SessionStore(pool))
    )
    channel = open_channel(f"127.0.0.1:{running.port}")
    memory = memory_pb2_grpc.MemoryServiceStub(channel)
    try:
        await memory.CreateSession(memory_pb2.CreateSessionRequest(), timeout=5)
        database.stop()  # no probe runs here: the pool itself finds out
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await memory.CreateSession(memory_pb2.CreateSessionRequest(), timeout=10)
        took = time.monotonic() - started
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert took < 2.0, f"{took:.1f}s: the call was retried"
    finally:
        database.start()
        await channel.close()
        await running.stop(0)


async def test_the_gateway_passes_on_a_service_s_reason_but_not_the_channel_s(
    pool: Pool,
) -> None:
    from services.common.grpc_client import open_channel
    from services.gateway.errors import grpc_error_parts

    running = await start_server(
        "127.0.0.1:0", lambda s: memory_servicer.register(s, SessionStore(pool))
    )
    pool.healthy = False  # as the probe sets it during an outage
    try:
        async with open_channel(f"127.0.0.1:{running.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as answered:
                await memory_pb2_grpc.MemoryServiceStub(channel).CreateSession(
                    memory_pb2.CreateSessionRequest(), timeout=5)
        async with open_channel("127.0.0.1:1") as nowhere:
            with pytest.raises(grpc.aio.AioRpcError) as unreachable:
                await memory_pb2_grpc.MemoryServiceStub(nowhere).CreateSession(
                    memory_pb2.CreateSessionRequest(), timeout=5)
    finally:
        pool.healthy = True
        await running.stop(0)
    status, code, message = grpc_error_parts(answered.value)
    assert (status, code) == (503, "unavailable")
    assert "the database is unavailable" in message
    status, code, message = grpc_error_parts(unreachable.value)
    assert (status, code) == (503, "unavailable")
    assert "127.0.0.1" not in message and "a backend service is unavailable" in message
