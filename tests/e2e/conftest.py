"""The whole platform, started the way `make run` starts it, once per e2e module."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.embedded import free_port
from devstack.launcher import DEFAULT_PORTS, Stack, StackConfig


class RunningStack:
    def __init__(self, stack: Stack, spans_path: Path) -> None:
        self.stack = stack
        self.spans_path = spans_path
        self.http = httpx.Client(base_url=stack.base_url, timeout=180)

    def upload(self, name: str, data: bytes, content_type: str = "text/plain") -> httpx.Response:
        return self.http.post("/upload", files={"file": (name, data, content_type)})

    def wait_job(self, job_id: str, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.http.get(f"/jobs/{job_id}").json()
            if job["status"] in ("indexed", "failed"):
                return dict(job)
            time.sleep(0.3)
        raise TimeoutError(f"job {job_id} did not finish")

    def spans(self) -> list[dict[str, Any]]:
        if not self.spans_path.exists():
            return []
        lines = self.spans_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


def stack_config(root: Path, env: dict[str, str]) -> StackConfig:
    """The stack `make run` starts, on free ports, logging to root/logs."""
    return StackConfig(
        data_dir=root / "data",
        http_port=free_port(),
        grpc_ports=dict.fromkeys(DEFAULT_PORTS, 0),
        log_dir=root / "logs",
        env=env,
    )


def start_stack(config: StackConfig) -> Stack:
    """Start it, printing every log tail if it does not come up."""
    stack = Stack(config)
    try:
        stack.start()
    except Exception:
        assert config.log_dir is not None
        dump_logs(config.log_dir)
        raise
    return stack


@pytest.fixture(scope="package")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    root = tmp_path_factory.mktemp("stack")
    spans = root / "spans.jsonl"
    stack = start_stack(stack_config(root, {
        "RAGCHAT_OTEL_EXPORTER": "jsonl",
        "RAGCHAT_OTEL_JSONL_PATH": str(spans),
        "RAGCHAT_MAX_UPLOAD_MB": "1",
        "RAGCHAT_MAX_TOKENS": "40",
    }))
    running = RunningStack(stack, spans)
    yield running
    running.http.close()
    codes = stack.stop()
    running.exit_codes = codes  # type: ignore[attr-defined]
    bad = {name: code for name, code in codes.items() if code != 0}
    if bad:
        dump_logs(root / "logs")
    assert not bad, f"services did not exit cleanly on SIGTERM: {bad}"


def dump_logs(folder: Path) -> None:
    for log in sorted(folder.glob("*.log")):
        print(f"===== {log.name} =====\n{log.read_text(errors='replace')[-4000:]}")
