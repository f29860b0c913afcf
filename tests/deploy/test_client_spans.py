"""With tracing on, PostgreSQL statements and S3/SQS calls show up as client spans.

Runs in a subprocess: the global tracer provider and the instrumentation can be
installed once per process, exactly as a service does at start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from devstack.embedded import ensure_bucket_and_queue

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = """
import sys
import boto3, psycopg
from opentelemetry import trace
from psycopg_pool import ConnectionPool
from services.common.settings import CommonSettings
from services.common.telemetry import setup_telemetry, shutdown_telemetry

dsn, endpoint, bucket, queue_url = sys.argv[1:5]
setup_telemetry("probe", CommonSettings())
session = boto3.session.Session(region_name="us-east-1")
s3 = session.client("s3", endpoint_url=endpoint)
sqs = session.client("sqs", endpoint_url=endpoint)
with trace.get_tracer("probe").start_as_current_span("request", kind=trace.SpanKind.SERVER):
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT %s::text", ("do-not-record-me",))
    with ConnectionPool(dsn, min_size=1, max_size=1) as pool, pool.connection() as conn:
        conn.execute("SELECT 2")
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    sqs.send_message(QueueUrl=queue_url, MessageBody="m")
# Outside any request: a health probe's calls, which start no trace.
with psycopg.connect(dsn) as conn:
    conn.execute("SELECT 3")
sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
shutdown_telemetry()
"""


def _spans(tmp_path: Path, exporter: str, postgres: Any, moto: Any) -> list[dict[str, Any]]:
    name = f"spans{uuid.uuid4().hex[:8]}"
    queue_url = ensure_bucket_and_queue(moto.endpoint_url, name, name)
    spans = tmp_path / "spans.jsonl"
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'gen'}",
        "RAGCHAT_OTEL_EXPORTER": exporter,
        "RAGCHAT_OTEL_JSONL_PATH": str(spans),
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    args = [postgres.dsn, moto.endpoint_url, name, queue_url]
    subprocess.run(
        [sys.executable, "-c", _SCRIPT, *args], env=env, cwd=tmp_path, check=True, timeout=60
    )
    if not spans.exists():
        return []
    return [json.loads(line) for line in spans.read_text().splitlines()]


def test_db_s3_and_sqs_calls_are_client_spans(tmp_path: Path, postgres: Any, moto: Any) -> None:
    spans = _spans(tmp_path, "jsonl", postgres, moto)
    client = [s for s in spans if s["kind"] == "CLIENT"]
    queries = {s["attributes"].get("db.query.text") for s in client}
    assert {"SELECT %s::text", "SELECT 2"} <= queries  # direct and pooled connections
    select = next(s for s in client if s["attributes"].get("db.query.text") == "SELECT 2")
    assert select["name"] == "SELECT ragchat"
    assert select["attributes"]["db.system.name"] == "postgresql"
    assert "do-not-record-me" not in json.dumps(spans)  # bound parameters are never recorded
    aws = {(s["attributes"].get("rpc.service"), s["attributes"].get("rpc.method")) for s in client}
    assert {("S3", "PutObject"), ("SQS", "SendMessage")} <= aws
    (request,) = [s for s in spans if s["name"] == "request"]
    assert {s["trace_id"] for s in client} == {request["trace_id"]}  # one trace per request


def test_calls_outside_a_request_start_no_trace(tmp_path: Path, postgres: Any, moto: Any) -> None:
    spans = _spans(tmp_path, "jsonl", postgres, moto)
    assert "SELECT 3" not in {s["attributes"].get("db.query.text") for s in spans}
    assert "GetQueueAttributes" not in {s["attributes"].get("rpc.method") for s in spans}


def test_no_client_spans_when_tracing_is_off(tmp_path: Path, postgres: Any, moto: Any) -> None:
    assert _spans(tmp_path, "none", postgres, moto) == []
