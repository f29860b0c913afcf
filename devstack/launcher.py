"""Starts the whole platform locally: PostgreSQL, moto (S3+SQS), four services, gateway.

Used by `make run` and by the end-to-end tests, so both exercise the same path.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from devstack.embedded import (
    EmbeddedMoto,
    EmbeddedPostgres,
    ensure_bucket_and_queue,
    free_port,
    start_moto,
    start_postgres,
)

logger = logging.getLogger(__name__)

SERVICES = ("memory", "retrieval", "generation", "ingest")
DEFAULT_PORTS = {"retrieval": 50051, "generation": 50052, "ingest": 50053, "memory": 50054}
BUCKET = "ragchat-documents"
QUEUE = "ragchat-ingest"


@dataclass
class StackConfig:
    data_dir: Path
    http_port: int = 8000
    # 0 picks free ports (tests); the defaults match the services' own defaults.
    grpc_ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    # None: children share this terminal; a folder: one log file per process.
    log_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    startup_timeout_s: float = 240.0


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.postgres: EmbeddedPostgres | None = None
        self.moto: EmbeddedMoto | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []
        self.base_url = f"http://127.0.0.1:{config.http_port}"

    def service_env(self) -> dict[str, str]:
        """The environment every child process gets (also handy for tests)."""
        assert self.postgres is not None and self.moto is not None
        cfg = self.config
        queue_url = ensure_bucket_and_queue(self.moto.endpoint_url, BUCKET, QUEUE)
        ports = {n: (p or free_port()) for n, p in cfg.grpc_ports.items()}
        cfg.grpc_ports = ports
        env = {
            "RAGCHAT_DATABASE_URL": self.postgres.dsn,
            "RAGCHAT_S3_ENDPOINT_URL": self.moto.endpoint_url,
            "RAGCHAT_SQS_ENDPOINT_URL": self.moto.endpoint_url,
            "RAGCHAT_S3_BUCKET": BUCKET,
            "RAGCHAT_SQS_QUEUE_URL": queue_url,
            "RAGCHAT_SQS_WAIT_S": "1",
            "RAGCHAT_CHROMA_PATH": str(cfg.data_dir / "chroma"),
            "RAGCHAT_HTTP_PORT": str(cfg.http_port),
            "HF_HUB_OFFLINE": "1",
            "RAGCHAT_INGEST_WORKER_TARGET": "",  # the worker runs inside ingest here
            "TOKENIZERS_PARALLELISM": "false",
            # moto accepts any credentials; real AWS never sees these.
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        for name, port in ports.items():
            env[f"RAGCHAT_{name.upper()}_TARGET"] = f"127.0.0.1:{port}"
        return {**os.environ, **env, **cfg.env}

    def start(self) -> None:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        if cfg.log_dir:
            cfg.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.postgres = start_postgres(cfg.data_dir / "postgres")
            self.moto = start_moto()
            env = self.service_env()
            for name in SERVICES:
                port = cfg.grpc_ports[name]
                listen = {"RAGCHAT_LISTEN": f"127.0.0.1:{port}"}
                self._spawn(name, f"services.{name}", {**env, **listen})
            self._spawn("gateway", "services.gateway", env)
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, module: str, env: dict[str, str]) -> None:
        out: IO[bytes] | None = None
        if self.config.log_dir:
            out = open(self.config.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
            self._logs.append(out)
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", module],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
        )

    def wait_healthy(self) -> None:
        """Block until GET /health is 200; fail fast if a process exits."""
        deadline = time.monotonic() + self.config.startup_timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the stack was not healthy within {self.config.startup_timeout_s}s")

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}")

    def stop_process(self, name: str, timeout: float = 30) -> int:
        """SIGTERM one process and wait; returns its exit code."""
        proc = self.processes[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("%s ignored SIGTERM for %ss; killing it", name, timeout)
                proc.kill()
                proc.wait()
        return proc.returncode

    def stop(self) -> dict[str, int]:
        """Stop everything, gateway first; returns each service's exit code."""
        codes = {}
        for name in ["gateway", *reversed(SERVICES)]:
            if name in self.processes:
                codes[name] = self.stop_process(name)
        if self.moto:
            self.moto.stop()
        if self.postgres:
            self.postgres.stop()
        for fh in self._logs:
            fh.close()
        return codes
