"""Starts and supervises the whole platform locally: PostgreSQL, moto (S3+SQS), four
services, the ingest worker and the gateway, each its own process (and, for `make run`,
an MLflow tracking server).

Used by `make run` and by the end-to-end tests, so both exercise the same path.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devstack.embedded import BucketAndQueue, EmbeddedMoto, EmbeddedPostgres, Queues, free_port
from devstack.mlflow import MlflowChild
from devstack.supervisor import Child, MotoChild, PostgresChild, PythonChild, Supervisor

logger = logging.getLogger(__name__)

SERVICES = ("memory", "retrieval", "generation", "ingest")
WORKER = "ingest-worker"
DEFAULT_PORTS = {"retrieval": 50051, "generation": 50052, "ingest": 50053, "memory": 50054,
                 WORKER: 50055}
BUCKET = "ragchat-documents"
QUEUE = "ragchat-ingest"


@dataclass
class StackConfig:
    data_dir: Path
    http_port: int = 8000
    # 0 picks free ports (tests); the defaults match the services' own defaults.
    # A name left out gets a free port.
    grpc_ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    # None: children share this terminal; a folder: one log file per process.
    log_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    startup_timeout_s: float = 240.0
    # The SQS worker in its own process (`python -m services.ingest.worker`), as in ECS;
    # False runs it inside the ingest service instead.
    separate_worker: bool = True
    # Restart children that die (in a background thread started by Stack.start()).
    supervise: bool = True
    # How often the bucket, queue and DLQ are checked and re-created if missing.
    resource_check_s: float = 3.0
    # An MLflow tracking server (data in data_dir/mlflow) the services and CLIs use;
    # `make run` starts one, the end-to-end tests do not.
    mlflow: bool = False
    mlflow_port: int = 0


class Stack:
    """The running platform. `processes` maps each Python child to its current process."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        moto_log = config.log_dir / "moto.log" if config.log_dir else None
        self._postgres = PostgresChild(config.data_dir / "postgres")
        self._moto = MotoChild(log_path=moto_log)
        self._mlflow = (MlflowChild(config.data_dir / "mlflow", config.mlflow_port)
                        if config.mlflow else None)
        self._children: dict[str, PythonChild] = {}
        self._env: dict[str, str] = {}
        self._resources: BucketAndQueue | None = None
        self.queues: Queues | None = None
        self.supervisor: Supervisor | None = None
        self.base_url = f"http://127.0.0.1:{config.http_port}"

    @property
    def postgres(self) -> EmbeddedPostgres | None:
        return self._postgres.server

    @property
    def moto(self) -> EmbeddedMoto | None:
        return self._moto.server

    @property
    def mlflow_uri(self) -> str:
        """The tracking server's URI (and UI), or "" when the stack runs none."""
        return self._mlflow.uri if self._mlflow is not None else ""

    @property
    def processes(self) -> dict[str, subprocess.Popen[bytes]]:
        return {n: c.process for n, c in self._children.items() if c.process is not None}

    def _setting(self, name: str, default: str) -> str:
        return self.config.env.get(name) or os.environ.get(name) or default

    def service_env(self) -> dict[str, str]:
        """The environment every child process gets (also handy for tests)."""
        assert self.postgres is not None and self.moto is not None
        cfg = self.config
        if self._resources is None:
            self._resources = BucketAndQueue(
                self.moto.endpoint_url, BUCKET, QUEUE,
                max_receive_count=int(self._setting("RAGCHAT_MAX_ATTEMPTS", "5")),
                visibility_timeout_s=int(self._setting("RAGCHAT_VISIBILITY_TIMEOUT_S", "120")),
            )
        self.queues = self._resources.ensure()
        names = DEFAULT_PORTS if cfg.separate_worker else SERVICES
        ports = {n: cfg.grpc_ports.get(n) or free_port() for n in names}
        cfg.grpc_ports = ports
        env = {
            "RAGCHAT_DATABASE_URL": self.postgres.dsn,
            "RAGCHAT_S3_ENDPOINT_URL": self.moto.endpoint_url,
            "RAGCHAT_SQS_ENDPOINT_URL": self.moto.endpoint_url,
            "RAGCHAT_S3_BUCKET": BUCKET,
            "RAGCHAT_SQS_QUEUE_URL": self.queues.url,
            "RAGCHAT_SQS_DLQ_URL": self.queues.dlq_url,
            "RAGCHAT_MAX_ATTEMPTS": str(self._resources.max_receive_count),
            "RAGCHAT_SQS_WAIT_S": "1",
            "RAGCHAT_CHROMA_PATH": str(cfg.data_dir / "chroma"),
            "RAGCHAT_HTTP_PORT": str(cfg.http_port),
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            # moto accepts any credentials; real AWS never sees these.
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        if self._mlflow is not None:
            env["MLFLOW_TRACKING_URI"] = self._mlflow.uri
        for name, port in ports.items():
            env[f"RAGCHAT_{name.upper().replace('-', '_')}_TARGET"] = f"127.0.0.1:{port}"
        if not cfg.separate_worker:
            env["RAGCHAT_INGEST_WORKER_TARGET"] = ""  # the gateway checks no worker process
        return {**os.environ, **env, **cfg.env}

    def start(self) -> None:
        """Start everything, wait for /health 200, then supervise (if configured).

        A child that exits during start-up fails the start: that is a configuration error,
        not a crash to retry.
        """
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        if cfg.log_dir:
            cfg.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self._mlflow is not None:
                self._mlflow.start()  # starts slowly: meanwhile PostgreSQL and moto
            self._postgres.start()
            self._moto.start()
            if self._mlflow is not None:  # ready before a service resolves its config
                self._mlflow.wait_ready()
            self._env = self.service_env()
            for name, module, extra in self._python_children():
                child = PythonChild(name, module, self._child_env(extra), self._log_path(name))
                child.start()
                self._children[name] = child
            self.supervisor = Supervisor(
                self._all_children(), self._after_restart, self._check_resources,
                periodic_s=cfg.resource_check_s,
            )
            for child in self._all_children():
                self.supervisor.mark_started(child.name)
            self.wait_healthy()
            if cfg.supervise:
                self.supervisor.start()
        except BaseException:
            self.stop()
            raise

    def _python_children(self) -> list[tuple[str, str, dict[str, str]]]:
        """(name, module, extra environment) of each Python process, in start order."""
        ports = self.config.grpc_ports
        out = []
        for name in SERVICES:
            extra = {"RAGCHAT_LISTEN": f"127.0.0.1:{ports[name]}"}
            if name == "ingest" and self.config.separate_worker:
                extra["RAGCHAT_WORKER_ENABLED"] = "false"
            out.append((name, f"services.{name}", extra))
        if self.config.separate_worker:
            listen = {"RAGCHAT_LISTEN": f"127.0.0.1:{ports[WORKER]}"}
            out.append((WORKER, "services.ingest.worker", listen))
        out.append(("gateway", "services.gateway", {}))
        return out

    def _child_env(self, extra: dict[str, str]) -> Callable[[], dict[str, str]]:
        return lambda: {**self._env, **extra}

    def _log_path(self, name: str) -> Path | None:
        return self.config.log_dir / f"{name}.log" if self.config.log_dir else None

    def _all_children(self) -> list[Child]:
        extra: list[Child] = [self._mlflow] if self._mlflow is not None else []
        return [self._postgres, self._moto, *extra, *self._children.values()]

    def _child(self, name: str) -> Child:
        for child in self._all_children():
            if child.name == name:
                return child
        raise KeyError(name)

    def _check_resources(self) -> None:
        """Re-create the bucket, queue and DLQ if they are missing (same names, same URLs)."""
        if self._resources is None or self._moto.exit_status() is not None:
            return
        try:
            self._resources.ensure()
        except Exception as exc:  # noqa: BLE001 - moto may be restarting; checked again soon
            logger.warning("could not check the bucket and queues: %s", exc)

    def _after_restart(self, name: str) -> None:
        if name == "moto":
            self._check_resources()

    def wait_healthy(self, timeout: float | None = None) -> None:
        """Block until GET /health is 200; fail fast if a process exits."""
        limit = self.config.startup_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the stack was not healthy within {limit}s")

    def check_alive(self) -> None:
        """Raise RuntimeError naming the first child that is not running."""
        for child in self._all_children():
            status = child.exit_status()
            if status is not None:
                raise RuntimeError(f"{child.name} {status}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Crash a child (any of them, "postgres" and "moto" too); the supervisor restarts it."""
        self._child(name).kill(sig)

    def restart(self, name: str) -> None:
        """Stop a child cleanly and start it again, now."""
        assert self.supervisor is not None
        with self.supervisor.lock:
            child = self._child(name)
            child.stop()
            child.start()
            self.supervisor.mark_started(name)
            self._after_restart(name)

    def stop_process(self, name: str, timeout: float = 30) -> int:
        """SIGTERM one Python child and wait (it stays down); returns its exit code."""
        child = self._children[name]
        if self.supervisor is None:
            code = child.stop(timeout)
        else:
            with self.supervisor.lock:
                self.supervisor.hold(name)
                code = child.stop(timeout)
        return -1 if code is None else code

    def stop(self) -> dict[str, int]:
        """Stop supervising, then everything, gateway first; returns each child's exit code."""
        if self.supervisor is not None:
            self.supervisor.stop()
        codes = {}
        for name in ["gateway", WORKER, *reversed(SERVICES)]:
            if name in self._children:
                code = self._children[name].stop()
                codes[name] = -1 if code is None else code
        self._moto.stop()
        self._postgres.stop()
        if self._mlflow is not None:
            self._mlflow.stop()
        return codes
