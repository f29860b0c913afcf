"""Keeps the dev stack's processes running, the way ECS keeps a service's tasks running.

A child that dies is restarted after an exponential backoff (1 s doubling to 30 s, back
to 1 s once it has stayed up for a minute); the rest of the stack keeps running.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from devstack.embedded import EmbeddedMoto, start_moto
from devstack.postgres import EmbeddedPostgres, start_postgres

logger = logging.getLogger(__name__)


class Child(ABC):
    """One supervised thing: start it, ask whether it died, stop it, or crash it on purpose."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def start(self) -> None:
        """Start (or start again); raise if it could not start."""

    @abstractmethod
    def exit_status(self) -> str | None:
        """None while it runs, else how it ended, e.g. "exited with code -9"."""

    @abstractmethod
    def stop(self) -> int | None:
        """Stop it cleanly; its exit code where there is one."""

    @abstractmethod
    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to it (tests crash children this way)."""


class PythonChild(Child):
    """`python -m <module>` with its own environment and log file."""

    def __init__(self, name: str, module: str, env: Callable[[], dict[str, str]],
                 log_path: Path | None) -> None:
        super().__init__(name)
        self.module, self._env, self._log_path = module, env, log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self._close_log()
        if self._log_path:
            self._log = open(self._log_path, "ab")  # noqa: SIM115 - closed by _close_log
        # Own session: Ctrl-C reaches only the supervisor, which stops children in order.
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module], env=self._env(), stdout=self._log,
            stderr=subprocess.STDOUT if self._log else None, start_new_session=True,
        )

    def exit_status(self) -> str | None:
        if self.process is None or self.process.poll() is None:
            return None
        return f"exited with code {self.process.returncode}"

    def stop(self, timeout: float = 30) -> int | None:
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("%s ignored SIGTERM for %ss; killing it", self.name, timeout)
                proc.kill()
                proc.wait()
        self._close_log()
        return proc.returncode

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class PostgresChild(Child):
    """The embedded PostgreSQL; restarted on the same port and data directory."""

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        super().__init__("postgres")
        self.data_dir, self.port = data_dir, port
        self.server: EmbeddedPostgres | None = None

    def start(self) -> None:
        if self.server is not None:
            self.server.release()
        self.server = start_postgres(self.data_dir, port=self.port)
        self.port = self.server.port  # a free port picked once, then kept

    def exit_status(self) -> str | None:
        if self.server is None or self.server.postmaster_pid() is not None:
            return None
        return "exited (its postmaster is gone)"

    def stop(self) -> int | None:
        if self.server is not None:
            self.server.stop()
        return None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """SIGQUIT is PostgreSQL's immediate shutdown, SIGKILL a crash."""
        pid = self.server.postmaster_pid() if self.server else None
        if pid is not None:
            os.kill(pid, sig)


class MotoChild(Child):
    """moto's S3/SQS server; restarted on the same port (it keeps no state across restarts)."""

    def __init__(self, port: int = 0, log_path: Path | None = None) -> None:
        super().__init__("moto")
        self.port, self._log_path = port, log_path
        self.server: EmbeddedMoto | None = None

    def start(self) -> None:
        if self.server is not None:
            self.server.stop()  # closes the old log handle
        self.server = start_moto(port=self.port, log_path=self._log_path)
        self.port = self.server.port

    def exit_status(self) -> str | None:
        if self.server is None or self.server.process.poll() is None:
            return None
        return f"exited with code {self.server.process.returncode}"

    def stop(self) -> int | None:
        if self.server is not None:
            self.server.stop()
            return self.server.process.returncode
        return None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.server is not None and self.server.process.poll() is None:
            self.server.process.send_signal(sig)


@dataclass
class Backoff:
    """Restart delays: `initial` doubling to `maximum`; reset after `stable_s` of uptime."""

    initial: float = 1.0
    maximum: float = 30.0
    stable_s: float = 60.0
    _next: float = field(default=0.0, init=False)

    def delay(self, uptime_s: float) -> float:
        if self._next == 0.0 or uptime_s >= self.stable_s:
            self._next = self.initial
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay


@dataclass
class _Slot:
    child: Child
    backoff: Backoff
    started_at: float = 0.0
    restart_at: float | None = None
    held: bool = False  # stopped on purpose: not restarted


class Supervisor:
    """Restarts children that die; runs `periodic` every `periodic_s` (e.g. re-create queues).

    Call supervise_once() from a loop, or start() a background thread. Every operation on
    the children takes `lock`, so a test can stop or crash one while the thread runs.
    """

    def __init__(self, children: list[Child], on_restart: Callable[[str], None],
                 periodic: Callable[[], None], periodic_s: float = 3.0,
                 backoff: Callable[[], Backoff] = Backoff) -> None:
        self.slots = {c.name: _Slot(c, backoff()) for c in children}
        self.lock = threading.RLock()
        self._on_restart, self._periodic, self._periodic_s = on_restart, periodic, periodic_s
        self._last_periodic = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def mark_started(self, name: str) -> None:
        with self.lock:
            slot = self.slots[name]
            slot.started_at, slot.restart_at, slot.held = time.monotonic(), None, False

    def hold(self, name: str) -> None:
        """Leave `name` down when it exits (a deliberate stop)."""
        with self.lock:
            self.slots[name].held = True

    def supervise_once(self) -> None:
        with self.lock:
            for slot in self.slots.values():
                if not slot.held:
                    self._check(slot, time.monotonic())
            if time.monotonic() - self._last_periodic >= self._periodic_s:
                self._last_periodic = time.monotonic()
                self._periodic()

    def _check(self, slot: _Slot, now: float) -> None:
        name = slot.child.name
        if slot.restart_at is None:
            status = slot.child.exit_status()
            if status is None:
                return
            delay = slot.backoff.delay(now - slot.started_at)
            logger.warning("%s %s; restarting in %.1fs", name, status, delay)
            slot.restart_at = now + delay
        elif now >= slot.restart_at:
            try:
                slot.child.start()
            except Exception as exc:  # noqa: BLE001 - retried with a longer delay
                delay = slot.backoff.delay(0.0)
                logger.warning("%s did not start (%s); retrying in %.1fs", name, exc, delay)
                slot.restart_at = time.monotonic() + delay
                return
            slot.started_at, slot.restart_at = time.monotonic(), None
            logger.info("%s restarted", name)
            self._on_restart(name)

    def start(self, interval_s: float = 0.5) -> None:
        """Supervise in a background thread until stop()."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(interval_s,),
                                        name="devstack-supervisor", daemon=True)
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.supervise_once()
            except Exception:  # noqa: BLE001 - the supervisor itself must not die
                logger.exception("supervisor tick failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
