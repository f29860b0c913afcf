"""Each task definition, run as written, starts healthy and stops cleanly.

The task's command and environment (image ENV under the task's) are taken from the
Dockerfile and services.yaml; only what AWS would supply is swapped: endpoints point
at the embedded PostgreSQL and moto, listeners at free 127.0.0.1 ports, secrets get
real-looking values, and spans go to a file instead of the ADOT sidecar.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from devstack.embedded import ensure_bucket_and_queue, free_port
from tests.deploy.templates import (
    ROOT,
    containers,
    dockerfile_stages,
    environment,
    image_target,
    resolve,
    secrets,
)

SECRET_VALUES = {
    "RAGCHAT_DATABASE_PASSWORD": "deploy-test-db-password-7f3a",
    "RAGCHAT_OPENAI_API_KEY": "sk-deploy-test-key-9c2e",
    "RAGCHAT_ADMIN_TOKEN": "deploy-test-admin-token-5b81",
}
START_TIMEOUT_S = 150


def _missing(name: str) -> str | None:
    """Why a deployable cannot run on this branch yet (its entry point is still coming)."""
    if name == "migrate" and not (ROOT / "services/common/migrate.py").exists():
        return "python -m services.common.migrate is not on this branch yet"
    if name == "ingest-worker":
        package = ROOT / "services/ingest/worker/__main__.py"
        module = ROOT / "services/ingest/worker.py"
        if not package.exists() and "__main__" not in module.read_text():
            return "python -m services.ingest.worker is not on this branch yet"
    if name == "gateway":
        sources = "".join(p.read_text() for p in (ROOT / "services/gateway").glob("*.py"))
        if '"/livez"' not in sources:
            return "the gateway has no /livez yet"
    return None


def _task_env(name: str, stack: dict[str, str], spans: Path) -> tuple[dict[str, str], str]:
    """The environment of the task with AWS endpoints swapped; returns it and the probe."""
    container = containers()[name]
    env = dict(dockerfile_stages()[image_target(container)].env)
    for key, value in environment(container).items():
        resolved = stack.get(key) or resolve(value)
        assert resolved is not None, f"{name}: no local stand-in for {key}"
        env[key] = resolved
    for key in secrets(container):
        env[key] = SECRET_VALUES[key]
    port = free_port("127.0.0.1")
    if "RAGCHAT_LISTEN" in env:
        env["RAGCHAT_LISTEN"] = f"127.0.0.1:{port}"
    if "RAGCHAT_HTTP_PORT" in env:
        env.update(RAGCHAT_HTTP_HOST="127.0.0.1", RAGCHAT_HTTP_PORT=str(port))
    for key in [k for k in env if k.endswith("_TARGET")]:
        env[key] = f"127.0.0.1:{free_port('127.0.0.1')}"  # nothing there: /livez ignores it
    if "RAGCHAT_SQS_QUEUE_URL" in env:
        env.update({k: v for k, v in stack.items() if k.endswith("_ENDPOINT_URL")})
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env.update(RAGCHAT_OTEL_EXPORTER="jsonl", RAGCHAT_OTEL_JSONL_PATH=str(spans))
    env.update(
        PATH=os.environ.get("PATH", ""),
        HOME=str(spans.parent),
        PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'gen'}",
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
    )
    probe = " ".join(container.get("HealthCheck", {}).get("Command", [])[1:])
    if container.get("PortMappings"):
        original = container["PortMappings"][0]["ContainerPort"]
        probe = probe.replace(f"127.0.0.1:{original}", f"127.0.0.1:{port}")
    return env, probe


def _command(name: str) -> list[str]:
    command = list(containers()[name]["Command"])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


@pytest.fixture(scope="module")
def stack(postgres: Any, moto: Any) -> dict[str, str]:
    """Values AWS would supply, from the embedded stack."""
    name = f"deploy{uuid.uuid4().hex[:8]}"
    queue_url = ensure_bucket_and_queue(moto.endpoint_url, name, name)
    sqs = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local",
                                region_name="us-east-1").client("sqs",
                                                                endpoint_url=moto.endpoint_url)
    return {
        "RAGCHAT_SQS_DLQ_URL": sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"],
        "RAGCHAT_DATABASE_URL": postgres.dsn,
        "RAGCHAT_S3_BUCKET": name,
        "RAGCHAT_SQS_QUEUE_URL": queue_url,
        "RAGCHAT_S3_ENDPOINT_URL": moto.endpoint_url,
        "RAGCHAT_SQS_ENDPOINT_URL": moto.endpoint_url,
    }


@pytest.fixture(scope="module")
def migrated(stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> None:
    """The migrate task runs before the services, as in a release (when it exists)."""
    if _missing("migrate"):
        return
    workdir = tmp_path_factory.mktemp("migrate")
    env, _ = _task_env("migrate", stack, workdir / "spans.jsonl")
    result = subprocess.run(_command("migrate"), env=env, cwd=workdir, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture
def started(request: pytest.FixtureRequest, stack: dict[str, str], migrated: None,
            tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    env, probe = _task_env(request.param, stack, tmp_path / "spans.jsonl")
    log = tmp_path / "stderr.log"
    with log.open("w") as err:
        proc = subprocess.Popen(_command(request.param), env=env, cwd=tmp_path, text=True,
                                stdout=err, stderr=subprocess.STDOUT)
    try:
        yield proc, probe, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _healthy(probe: str, env_path: str) -> bool:
    env = {**os.environ, "PYTHONPATH": env_path}
    args = [sys.executable, *probe.split()[1:]]
    return subprocess.run(args, env=env, capture_output=True, timeout=30).returncode == 0


@pytest.mark.parametrize(
    "started",
    [pytest.param(n, id=n, marks=pytest.mark.skipif(bool(_missing(n)), reason=_missing(n) or ""))
     for n in ("memory", "gateway", "generation", "retrieval", "ingest-api", "ingest-worker")],
    indirect=True,
)
def test_task_starts_healthy_and_stops_cleanly(
    started: tuple[subprocess.Popen[str], str, Path],
) -> None:
    proc, probe, log = started
    path = f"{ROOT}{os.pathsep}{ROOT / 'gen'}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _healthy(probe, path):
        assert proc.poll() is None, f"exited {proc.returncode}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"not healthy:\n{log.read_text()[-3000:]}"
        time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    output = log.read_text()
    assert not [s for s in SECRET_VALUES.values() if s in output], "a secret was logged"
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert records and all("level" in r and "message" in r for r in records)
