"""The embedded dev stack: PostgreSQL that keeps its data and recovers, moto S3/SQS."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import psycopg
import pytest

from devstack.embedded import (
    BucketAndQueue,
    EmbeddedMoto,
    EmbeddedPostgres,
    ensure_bucket_and_queue,
    start_postgres,
)
from devstack.supervisor import Backoff, MotoChild, PostgresChild, Supervisor


@pytest.fixture
def pg_dir(tmp_path: Path) -> Iterator[Path]:
    data_dir = tmp_path / "pg"
    yield data_dir
    # Whatever a test left running on this directory is stopped.
    if (data_dir / "postmaster.pid").exists():
        start_postgres(data_dir).stop()


def _write_row(server: EmbeddedPostgres, value: str) -> None:
    with psycopg.connect(server.dsn) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS notes (value text)")
        conn.execute("INSERT INTO notes VALUES (%s)", (value,))


def _rows(server: EmbeddedPostgres) -> list[str]:
    with psycopg.connect(server.dsn) as conn:
        return [r[0] for r in conn.execute("SELECT value FROM notes ORDER BY value")]


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().splitlines()[0])


def test_postgres_keeps_data_across_restarts(pg_dir: Path) -> None:
    with start_postgres(pg_dir) as server:
        _write_row(server, "kept")
        with psycopg.connect(server.dsn) as conn:
            ext = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            assert ext.fetchone() is not None
    assert not (pg_dir / "postmaster.pid").exists()
    with start_postgres(pg_dir) as again:
        assert _rows(again) == ["kept"]


def test_postgres_starts_after_a_crash(pg_dir: Path) -> None:
    server = start_postgres(pg_dir)
    _write_row(server, "before crash")
    pid = _postmaster_pid(pg_dir)
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)
    assert (pg_dir / "postmaster.pid").exists()
    with start_postgres(pg_dir) as again:
        assert _rows(again) == ["before crash"]


def test_postgres_ignores_a_pid_file_naming_another_live_process(pg_dir: Path) -> None:
    with start_postgres(pg_dir) as server:
        _write_row(server, "x")
        lines = (pg_dir / "postmaster.pid").read_text().splitlines()
    # After a container restart the recorded pid often belongs to some other process.
    with subprocess.Popen(["sleep", "60"]) as other:
        try:
            (pg_dir / "postmaster.pid").write_text("\n".join([str(other.pid), *lines[1:]]))
            with start_postgres(pg_dir) as again:
                assert _rows(again) == ["x"]
            assert other.poll() is None, "the unrelated process must not be touched"
        finally:
            other.kill()


def test_postgres_recovers_from_a_pid_file_naming_a_dead_process(pg_dir: Path) -> None:
    with start_postgres(pg_dir) as server:
        _write_row(server, "y")
        lines = (pg_dir / "postmaster.pid").read_text().splitlines()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (pg_dir / "postmaster.pid").write_text("\n".join([str(dead.pid), *lines[1:]]))
    with start_postgres(pg_dir) as again:
        assert _rows(again) == ["y"]


def test_postgres_restarts_a_server_left_running(pg_dir: Path) -> None:
    first = start_postgres(pg_dir)
    _write_row(first, "z")
    # Its owner died without stopping it; the next start takes over the directory.
    with start_postgres(pg_dir) as second:
        assert _rows(second) == ["z"]


def test_postgres_reports_a_port_that_is_taken(pg_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(RuntimeError, match="PostgreSQL did not start"):
            start_postgres(pg_dir, port=taken.getsockname()[1])
    assert not (pg_dir / "postmaster.pid").exists()


def _wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if Path(f"/proc/{pid}/status").exists() and "zombie" in Path(
            f"/proc/{pid}/status"
        ).read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} still running")


def _session() -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local",
                                 region_name="us-east-1")


def test_moto_s3_and_sqs_round_trip(moto: EmbeddedMoto) -> None:
    queue_url = ensure_bucket_and_queue(moto.endpoint_url, "roundtrip", "roundtrip")
    session = _session()
    s3 = session.client("s3", endpoint_url=moto.endpoint_url)
    sqs = session.client("sqs", endpoint_url=moto.endpoint_url)

    s3.put_object(Bucket="roundtrip", Key="docs/a.txt", Body=b"hello")
    assert s3.get_object(Bucket="roundtrip", Key="docs/a.txt")["Body"].read() == b"hello"

    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"job_id": "j1"}))
    received = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert json.loads(received[0]["Body"]) == {"job_id": "j1"}


def test_ensure_bucket_and_queue_is_idempotent(moto: EmbeddedMoto) -> None:
    first = ensure_bucket_and_queue(moto.endpoint_url, "idem", "idem")
    second = ensure_bucket_and_queue(moto.endpoint_url, "idem", "idem")
    assert first == second
    sqs = _session().client("sqs", endpoint_url=moto.endpoint_url)
    attrs = sqs.get_queue_attributes(QueueUrl=first, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "60"
    redrive = json.loads(attrs["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == 5
    assert redrive["deadLetterTargetArn"].endswith(":idem-dlq")
    s3 = _session().client("s3", endpoint_url=moto.endpoint_url)
    assert "idem" in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_ensure_recreates_a_deleted_bucket_and_queues_at_the_same_urls(
    moto: EmbeddedMoto,
) -> None:
    resources = BucketAndQueue(moto.endpoint_url, "gone", "gone", max_receive_count=3)
    first = resources.ensure()
    session = _session()
    s3 = session.client("s3", endpoint_url=moto.endpoint_url)
    sqs = session.client("sqs", endpoint_url=moto.endpoint_url)
    s3.delete_bucket(Bucket="gone")
    sqs.delete_queue(QueueUrl=first.url)
    sqs.delete_queue(QueueUrl=first.dlq_url)

    assert resources.ensure() == first
    s3.put_object(Bucket="gone", Key="k", Body=b"back")
    attrs = sqs.get_queue_attributes(QueueUrl=first.url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == 3
    assert redrive["deadLetterTargetArn"].endswith(":gone-dlq")


def test_backoff_doubles_to_a_cap_and_resets_after_a_stable_run() -> None:
    backoff = Backoff(initial=1, maximum=8, stable_s=60)
    assert [backoff.delay(uptime_s=1) for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    assert backoff.delay(uptime_s=61) == 1
    assert backoff.delay(uptime_s=1) == 2


def _supervise_until(supervisor: Supervisor, done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "not restarted in time"
        supervisor.supervise_once()
        time.sleep(0.1)


def _fast() -> Backoff:
    return Backoff(initial=0.2, maximum=1)


def test_supervisor_restarts_killed_moto_on_the_same_port(tmp_path: Path) -> None:
    child = MotoChild(log_path=tmp_path / "moto.log")
    child.start()
    restarted: list[str] = []
    supervisor = Supervisor([child], restarted.append, lambda: None, backoff=_fast)
    supervisor.mark_started("moto")
    try:
        assert child.server is not None
        url, first = child.server.endpoint_url, child.server.process
        child.kill(signal.SIGKILL)
        _supervise_until(supervisor, lambda: restarted == ["moto"], timeout=30)
        assert child.server.endpoint_url == url and child.server.process is not first
        sqs = _session().client("sqs", endpoint_url=url)
        assert "QueueUrls" not in sqs.list_queues()  # moto keeps nothing across a restart
    finally:
        child.stop()


def test_supervisor_restarts_postgres_on_the_same_port_with_its_data(pg_dir: Path) -> None:
    child = PostgresChild(pg_dir)
    child.start()
    restarted: list[str] = []
    supervisor = Supervisor([child], restarted.append, lambda: None, backoff=_fast)
    supervisor.mark_started("postgres")
    try:
        assert child.server is not None
        _write_row(child.server, "durable")
        dsn = child.server.dsn
        child.kill(signal.SIGQUIT)  # immediate shutdown, as after a crash
        _supervise_until(supervisor, lambda: restarted == ["postgres"], timeout=60)
        assert child.server.dsn == dsn
        assert _rows(child.server) == ["durable"]
    finally:
        child.stop()
