"""A local MLflow tracking server: SQLite backend, artifacts on local disk, proxied by the
server (`mlflow-artifacts:`), and job execution disabled (no Huey workers: the platform
never submits server-side jobs, and they would cost memory and CPU for nothing).

Used by `make run` (devstack) and by the tests' `mlflow_server` fixture.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from devstack.postgres import free_port
from devstack.supervisor import Child

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

    def stop(self) -> int | None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        return self.process.returncode


def launch(root: Path, port: int, host: str = "127.0.0.1") -> MlflowServer:
    """Start the server (log in root/server.log) without waiting for it."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "server.log").open("ab") as log:
        proc = subprocess.Popen(server_command(root, host, port), stdout=log,
                                stderr=subprocess.STDOUT, env=server_env())
    return MlflowServer(f"http://{host}:{port}", root, proc)


def ready(server: MlflowServer, timeout_s: float = 180.0) -> MlflowServer:
    """Wait until `server` answers; on failure kill it and raise with its log's tail."""
    try:
        wait_ready(server.uri, server.process, timeout_s)
    except RuntimeError as exc:
        server.process.kill()
        server.process.wait(5)
        tail = (server.root / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{exc}; log tail:\n{tail}") from exc
    logger.info("MLflow tracking server at %s (data in %s)", server.uri, server.root)
    return server


def start_mlflow(root: Path, port: int, host: str = "127.0.0.1",
                 timeout_s: float = 180.0) -> MlflowServer:
    """Start the server and wait until it answers."""
    return ready(launch(root, port, host), timeout_s)


class MlflowChild(Child):
    """The tracking server under the devstack supervisor; restarted on the same port
    (its state is in root: the SQLite database and the artifacts)."""

    def __init__(self, root: Path, port: int = 0) -> None:
        super().__init__("mlflow")
        self.root, self.port = root, port
        self.server: MlflowServer | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Launch (not waiting: see wait_ready)."""
        if self.server is not None:
            self.server.stop()
        self.port = self.port or free_port()
        self.server = launch(self.root, self.port)

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        assert self.server is not None
        ready(self.server, timeout_s)

    def exit_status(self) -> str | None:
        if self.server is None or self.server.process.poll() is None:
            return None
        return f"exited with code {self.server.process.returncode}"

    def stop(self) -> int | None:
        return self.server.stop() if self.server is not None else None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.server is not None and self.server.process.poll() is None:
            self.server.process.send_signal(sig)
