"""`python -m services.ingest.worker` as its own process: health, and bounded shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg_pool import ConnectionPool

from devstack.embedded import free_port
from services.common.aws import s3_client, sqs_client
from services.common.grpc_server import start_server
from services.common.health import HealthMonitor
from services.common.vectorstore.pgvector import PgVectorStore
from services.ingest.adapters import S3BlobStore, SqsJobQueue
from services.ingest.config import IngestSettings
from services.ingest.jobs import JobRepository
from services.ingest.submission import Submissions

GRACE_S = 2


def _statuses(port: int) -> dict[str, str]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        resp = health_pb2_grpc.HealthStub(channel).List(health_pb2.HealthListRequest(), timeout=2)
    name = health_pb2.HealthCheckResponse.ServingStatus.Name
    return {k: name(v.status) for k, v in resp.statuses.items()}


def _wait_serving(proc: subprocess.Popen[bytes], port: int, timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the worker exited during start-up"
        try:
            statuses = _statuses(port)
            if statuses.get("") == "SERVING":
                return statuses
        except grpc.RpcError:
            pass
        time.sleep(0.5)
    raise AssertionError("the worker did not become SERVING")


def test_the_worker_process_hands_its_job_back_on_sigterm(
    clean_pool: ConnectionPool, aws: dict[str, str], postgres: Any
) -> None:
    settings = IngestSettings(**aws)
    repo = JobRepository(clean_pool)
    queue = SqsJobQueue(sqs_client(settings), settings.sqs_queue_url)
    submissions = Submissions(repo, S3BlobStore(s3_client(settings), settings.s3_bucket), queue,
                              PgVectorStore(clean_pool), settings.max_upload_bytes)
    text = "\n\n".join(f"Section {i}: the harbour of Port Aven landed {i} tonnes of cod "
                       f"and herring in the year {1800 + i % 200}." for i in range(4000))
    job_id, _ = submissions.submit("big.txt", "text/plain", text.encode())

    port = free_port()
    env = {**os.environ, **{f"RAGCHAT_{k.upper()}": v for k, v in aws.items()},
           "RAGCHAT_DATABASE_URL": postgres.dsn, "RAGCHAT_LISTEN": f"127.0.0.1:{port}",
           "RAGCHAT_SHUTDOWN_GRACE_S": str(GRACE_S), "RAGCHAT_SQS_WAIT_S": "1",
           "RAGCHAT_CHUNK_TOKENS": "40", "RAGCHAT_CHUNK_OVERLAP_TOKENS": "8",
           "HF_HUB_OFFLINE": "1", "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
    proc = subprocess.Popen([sys.executable, "-m", "services.ingest.worker"], env=env)
    try:
        statuses = _wait_serving(proc, port, 120)
        for part in ("dependency/postgres", "dependency/s3", "dependency/sqs",
                     "task/worker-0", "task/stale-sweep"):
            assert statuses[part] == "SERVING", statuses
        deadline = time.monotonic() + 60
        while repo.get(job_id).status != "processing":
            assert time.monotonic() < deadline, "the worker never took the job"
            time.sleep(0.2)
        time.sleep(1)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(GRACE_S + 20)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"worker exited {code} {took:.1f}s after SIGTERM (grace {GRACE_S}s)")
    assert code == 0
    assert took < GRACE_S + 5
    job = repo.get(job_id)
    assert job.status == "queued" and "shutdown" in job.error
    redelivered = queue.receive(1, 2)  # visible again at once, not after the timeout
    assert [m.body["job_id"] for m in redelivered] == [job_id]


async def test_a_background_task_that_dies_turns_the_service_not_serving() -> None:
    running = await start_server("127.0.0.1:0", lambda s: [])
    monitor = HealthMonitor(running.health, running.names, [])
    stop = asyncio.Event()

    async def dies(stop: asyncio.Event) -> None:
        raise RuntimeError("boom")

    try:
        await monitor.check_once()
        assert (await asyncio.to_thread(_statuses, running.port))[""] == "SERVING"
        task = monitor.supervise("worker-0", dies, stop)
        await asyncio.wait([task])
        await asyncio.sleep(0.1)  # the done-callback publishes
        statuses = await asyncio.to_thread(_statuses, running.port)
        assert statuses[""] == "NOT_SERVING"
        assert statuses["task/worker-0"] == "NOT_SERVING"
        assert not monitor.healthy
    finally:
        await running.stop(0)


@pytest.mark.parametrize("argv", [[]])
def test_the_migration_command_migrates(argv: list[str], make_database: Any,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from services.common import migrate as migrate_cli

    dsn = make_database("migrate_cli")
    monkeypatch.setenv("RAGCHAT_DATABASE_URL", dsn)
    assert migrate_cli.main(argv) == 0
    assert migrate_cli.main(argv) == 0  # idempotent
    import psycopg

    with psycopg.connect(dsn) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"documents", "jobs", "chunks", "sessions", "turns"} <= tables
    monkeypatch.setenv("RAGCHAT_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert migrate_cli.main(argv) == 1
