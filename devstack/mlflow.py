"""A local MLflow tracking server: SQLite backend, artifacts on local disk, proxied by the
server (`mlflow-artifacts:`), and job execution disabled (no Huey workers: the platform
never submits server-side jobs, and they would cost memory and CPU for nothing).

Used by `make run` (devstack) and by the tests' `mlflow_server` fixture.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

logger = logging.getLogger(__name__)

# MLflow 3.17: the server runs background jobs (Huey) unless this is false.
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
              "MLFLOW_SERVER_JOB_ENABLE_PERIODIC_TASKS": "false"}


def server_command(root: Path, host: str, port: int) -> list[str]:
    """`mlflow server` keeping its database and artifacts under `root`."""
    mlflow = Path(sys.executable).with_name("mlflow")
    return [str(mlflow), "server", "--host", host, "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "artifacts")]


def server_env() -> dict[str, str]:
    """The server's environment: ours, minus a tracking URI (it is the server)."""
    env = {**os.environ, **SERVER_ENV}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def wait_ready(uri: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Return once GET /health answers 200; raise if the server exits or never answers."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{uri}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"mlflow server not ready within {timeout_s:.0f}s")
        time.sleep(0.5)


@dataclass
class MlflowServer:
    """A started server; `uri` is its tracking URI (and UI)."""

    uri: str
    root: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def start_mlflow(root: Path, port: int, host: str = "127.0.0.1",
                 timeout_s: float = 180.0) -> MlflowServer:
    """Start the server with its log in root/server.log and wait until it answers."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "server.log").open("ab") as log:
        proc = subprocess.Popen(server_command(root, host, port), stdout=log,
                                stderr=subprocess.STDOUT, env=server_env())
    uri = f"http://{host}:{port}"
    try:
        wait_ready(uri, proc, timeout_s)
    except RuntimeError as exc:
        proc.kill()
        proc.wait(5)
        tail = (root / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{exc}; log tail:\n{tail}") from exc
    logger.info("MLflow tracking server at %s (data in %s)", uri, root)
    return MlflowServer(uri, root, proc)
