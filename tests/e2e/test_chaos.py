"""Chaos: crash the ingest worker, PostgreSQL and moto while documents index.

The platform runs as `make run` runs it, supervised. Whatever crashes, every accepted
upload ends `indexed` exactly once, or `failed` with a reason; no job is left hanging.
moto keeps S3 and SQS in memory, so raw files not yet indexed when it crashes are lost:
those jobs end `failed` ("raw file ... missing") through the stale-job sweep.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import psycopg
import pytest

from devstack.launcher import BUCKET, WORKER, Stack
from tests.e2e.conftest import RunningStack, dump_logs, stack_config, start_stack
from tests.support.datasets import datasets_dir, read_jsonl

pytestmark = pytest.mark.e2e
NORMANS = datasets_dir() / "squad2-normans"
STALE_AFTER_S = 15
JobRows = dict[str, tuple[str, str, int]]  # job_id -> (status, error, chunk_count)


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory,
          request: pytest.FixtureRequest) -> Iterator[RunningStack]:
    root = tmp_path_factory.mktemp("chaos")
    failed_before = request.session.testsfailed
    stack = start_stack(stack_config(root, {
        "RAGCHAT_STALE_JOB_AFTER_S": str(STALE_AFTER_S),
        "RAGCHAT_VISIBILITY_TIMEOUT_S": "10",
        "RAGCHAT_SQS_WAIT_S": "1",
        # Crashes count as delivery attempts; they must not exhaust the retries here.
        "RAGCHAT_MAX_ATTEMPTS": "20",
        "RAGCHAT_MAX_TOKENS": "8",
    }))
    running = RunningStack(stack, root / "spans.jsonl")
    yield running
    running.http.close()
    stack.stop()
    if request.session.testsfailed > failed_before:
        dump_logs(root / "logs")


def _aws(stack: Stack, service: str) -> Any:
    assert stack.moto is not None
    session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local",
                                    region_name="us-east-1")
    return session.client(service, endpoint_url=stack.moto.endpoint_url)


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout}s"
        time.sleep(0.3)


def _healthy(running: RunningStack) -> bool:
    try:
        return running.http.get("/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _kill_and_wait_restart(stack: Stack, name: str, timeout: float = 60) -> None:
    old = stack.processes[name]
    stack.kill(name)
    _wait(lambda: stack.processes[name] is not old, timeout, f"{name} restarted")


def test_supervisor_restarts_a_killed_service(chaos: RunningStack,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="devstack")
    _kill_and_wait_restart(chaos.stack, "retrieval", timeout=15)
    assert any("retrieval exited with code -9; restarting in" in r.getMessage()
               for r in caplog.records)
    _wait(lambda: _healthy(chaos), 150, "/health back to 200")
    resp = chaos.http.post("/search", json={"query": "Who were the Normans?"})
    assert resp.status_code == 200, resp.text


def test_deleted_bucket_and_queues_are_recreated(chaos: RunningStack) -> None:
    stack = chaos.stack
    assert stack.queues is not None
    s3, sqs = _aws(stack, "s3"), _aws(stack, "sqs")
    for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    s3.delete_bucket(Bucket=BUCKET)
    sqs.delete_queue(QueueUrl=stack.queues.url)
    sqs.delete_queue(QueueUrl=stack.queues.dlq_url)

    def back() -> bool:
        buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        urls = sqs.list_queues().get("QueueUrls", [])
        assert stack.queues is not None
        return BUCKET in buckets and {stack.queues.url, stack.queues.dlq_url} <= set(urls)

    _wait(back, 15, "bucket and queues re-created")
    # The services notice on their next dependency probe; until then uploads get 503.
    _wait(lambda: _healthy(chaos), 30, "/health back to 200")
    resp = chaos.upload("after-recreate.txt", b"The Normans gave their name to Normandy.")
    assert resp.status_code == 202, resp.text
    assert chaos.wait_job(resp.json()["job_id"], timeout=120)["status"] == "indexed"


def _upload_all(running: RunningStack, paragraphs: list[dict[str, Any]],
                timeout: float = 120) -> dict[str, str]:
    """Upload each paragraph, retrying (as a client would) while the platform answers 5xx;
    returns job id -> document id of the accepted uploads."""
    accepted = {}
    deadline = time.monotonic() + timeout
    for para in paragraphs:
        while True:
            try:
                resp: httpx.Response | None = running.upload(f"{para['_id']}.txt",
                                                             para["text"].encode())
            except httpx.HTTPError:
                resp = None
            if resp is not None and resp.status_code == 202:
                accepted[resp.json()["job_id"]] = resp.json()["document_id"]
                break
            assert resp is None or resp.status_code in (502, 503, 504), resp.text
            assert time.monotonic() < deadline, f"upload not accepted: {resp and resp.text}"
            time.sleep(0.5)
    return accepted


def _job_rows(dsn: str) -> JobRows | None:
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            rows = conn.execute("SELECT job_id, status, error, chunk_count FROM jobs")
            return {r[0]: (r[1], r[2], r[3]) for r in rows}
    except psycopg.OperationalError:
        return None  # PostgreSQL is restarting


def _wait_settled(dsn: str, job_ids: set[str], timeout: float) -> JobRows:
    """Poll until no job is queued or processing; the last rows seen, settled or not."""
    deadline = time.monotonic() + timeout
    rows: JobRows = {}
    while time.monotonic() < deadline:
        rows = _job_rows(dsn) or rows
        if job_ids <= set(rows) and all(s in ("indexed", "failed") for s, _, _ in rows.values()):
            break
        time.sleep(1)
    return rows


def _indexed(dsn: str, job_ids: set[str]) -> int:
    rows = _job_rows(dsn) or {}
    return sum(rows[j][0] == "indexed" for j in job_ids if j in rows)


def _chunks(dsn: str) -> dict[str, list[int]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT document_id, ordinal FROM chunks ORDER BY 1, 2").fetchall()
    out: dict[str, list[int]] = {}
    for doc, ordinal in rows:
        out.setdefault(doc, []).append(ordinal)
    return out


def test_crashes_while_indexing_lose_nothing_silently(chaos: RunningStack) -> None:
    stack = chaos.stack
    assert stack.postgres is not None and stack.moto is not None
    dsn = stack.postgres.dsn  # the same port after every restart
    paragraphs = read_jsonl(NORMANS / "corpus.jsonl")  # the whole article: 39 paragraphs
    before, during_pg, during_moto, after = (
        paragraphs[0:12], paragraphs[12:24], paragraphs[24:31], paragraphs[31:])
    assert len(after) >= 5
    started = time.monotonic()

    # 1. The worker is SIGKILLed mid-indexing, then again while it loads its model.
    jobs = _upload_all(chaos, before)
    _wait(lambda: _indexed(dsn, set(jobs)) >= 2, 120, "indexing started")
    _kill_and_wait_restart(stack, WORKER)
    time.sleep(2)
    _kill_and_wait_restart(stack, WORKER)

    # 2. PostgreSQL crashes (immediate shutdown) while uploads come in.
    stack.kill("postgres", signal.SIGQUIT)
    jobs |= _upload_all(chaos, during_pg)
    settled = _wait_settled(dsn, set(jobs), timeout=150)
    logging.getLogger(__name__).info("after worker and PostgreSQL crashes: %s",
                                     _count(settled, set(jobs)))

    # 3. moto crashes while uploads wait for the (again crashed) worker.
    stack.kill(WORKER)
    lost = _upload_all(chaos, during_moto)
    old_moto = stack.moto.process
    stack.kill("moto")
    _wait(lambda: stack.moto is not None and stack.moto.process is not old_moto, 30,
          "moto restarted")
    late = _upload_all(chaos, after)

    every = set(jobs) | set(lost) | set(late)
    rows = _wait_settled(dsn, every, timeout=180)
    logging.getLogger(__name__).info("chaos took %.0fs: %s", time.monotonic() - started,
                                     _count(rows, every))
    _assert_outcome(rows, jobs | late, lost, {**jobs, **lost, **late}, _chunks(dsn))


def _count(rows: JobRows, job_ids: set[str]) -> dict[str, int]:
    """Jobs per status, and per failure reason (file names cut off)."""
    out: dict[str, int] = {}
    for job_id in job_ids:
        status, error, _ = rows.get(job_id, ("missing", "", 0))
        key = f"{status}: {error.split(chr(39))[0]}" if error and status == "failed" else status
        out[key] = out.get(key, 0) + 1
    return out


def _assert_outcome(rows: JobRows, must_index: dict[str, str], may_lose: dict[str, str],
                    documents: dict[str, str], chunks: dict[str, list[int]]) -> None:
    stuck = {j: r for j, r in rows.items() if r[0] in ("queued", "processing")}
    assert not stuck, f"jobs left hanging: {stuck}"
    not_indexed = {j: rows.get(j) for j in must_index if rows.get(j, ("",))[0] != "indexed"}
    assert not not_indexed, f"uploads accepted outside moto's crash not indexed: {not_indexed}"
    for job_id in may_lose:
        status, error, _ = rows[job_id]
        assert status == "indexed" or (status == "failed" and "missing" in error), rows[job_id]
    for job_id, doc_id in documents.items():
        status, _, count = rows[job_id]
        ordinals = chunks.get(doc_id, [])
        if status == "indexed":
            # Exactly once: ordinals 0..n-1, each once, as many as the job reports.
            assert count >= 1 and ordinals == list(range(count)), (doc_id, count, ordinals)
        else:
            assert ordinals == [], (doc_id, ordinals)
