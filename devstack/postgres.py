"""An embedded PostgreSQL 16 + pgvector server from pgserver's bundled binaries.

PostgreSQL refuses to run as root, so under root the server runs as an unprivileged
system user (created on first use, as pgserver itself does) that owns the data directory.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

logger = logging.getLogger(__name__)

DATABASE = "ragchat"
PG_SYSTEM_USER = "ragchat-pg"
_START_ATTEMPTS = 3
_SOCKET_PREFIX = "rcpg-"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _pg_bin(name: str) -> str:
    # find_spec, not import: importing pgserver creates lock files as a side effect.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pgserver is not installed; run `make install`")
    return str(Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / name)


def _system_user() -> pwd.struct_passwd | None:
    """The account PostgreSQL runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("RAGCHAT_PG_SYSTEM_USER", PG_SYSTEM_USER)
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        entry = pwd.getpwnam(name)  # also covers a concurrent useradd that won the race
    except KeyError as exc:
        raise RuntimeError(
            f"PostgreSQL cannot run as root and creating user {name!r} failed: "
            f"{result.stderr.strip()}"
        ) from exc
    logger.info("created system user %s to run PostgreSQL", name)
    return entry


def _grant_traversal(path: Path) -> None:
    """Let other users traverse every ancestor of `path` (o+x only, nothing readable)."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _run(cmd: list[str], user: pwd.struct_passwd | None, cwd: Path, timeout: float) -> str:
    """Run a PostgreSQL tool (as `user` when given); raise RuntimeError with its output."""
    # Files, not pipes: the postmaster forked by pg_ctl could otherwise hold a pipe open.
    with tempfile.TemporaryFile("w+") as out:
        ids: dict[str, Any] = {}
        if user is not None:
            ids = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C", "HOME": str(cwd)}
        try:
            proc = subprocess.run(
                cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env, timeout=timeout,
                start_new_session=True, check=False, **ids,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{Path(cmd[0]).name} timed out after {timeout}s") from exc
        out.seek(0)
        output = out.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} exited with {proc.returncode}: {output.strip()}")
    return output


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_our_postgres(pid: int, data_dir: Path) -> bool:
    """Whether live `pid` is a postmaster for `data_dir` (not a recycled pid)."""
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no procfs: trust the pid
    try:
        comm = (proc / "comm").read_text().strip()
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return comm == "postgres" and os.fsencode(data_dir) in cmdline


class EmbeddedPostgres:
    """A PostgreSQL server on a local data directory; stop() or use as a context manager."""

    def __init__(self, data_dir: Path, host: str, port: int, socket_dir: Path,
                 user: pwd.struct_passwd | None) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self._socket_dir = socket_dir
        self._user = user

    @property
    def dsn(self) -> str:
        return self.dsn_for(DATABASE)

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database `name` (if missing) with the vector extension; return its DSN."""
        with psycopg.connect(self.dsn_for("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if exists.fetchone() is None:
                try:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                except pg_errors.DuplicateDatabase:
                    pass  # another process created it meanwhile
        with psycopg.connect(self.dsn_for(name), autocommit=True) as conn:
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except pg_errors.UniqueViolation:
                pass  # concurrent CREATE EXTENSION
        return self.dsn_for(name)

    def postmaster_pid(self) -> int | None:
        """The running postmaster's pid, or None when the server is down."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, IndexError, ValueError):
            return None
        # A dead pid, or one recycled by another process (or a zombie), is not our server.
        return pid if _pid_alive(pid) and _is_our_postgres(pid, self.data_dir) else None

    def stop(self, mode: str = "fast") -> None:
        """Shut down (`fast` rolls back open transactions, `immediate` is a crash); a no-op
        if not running."""
        if (self.data_dir / "postmaster.pid").exists():
            cmd = [_pg_bin("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"]
            try:
                _run(cmd, self._user, self.data_dir, timeout=60)
            except RuntimeError as exc:
                logger.warning("stopping PostgreSQL: %s", exc)
        shutil.rmtree(self._socket_dir, ignore_errors=True)

    def release(self) -> None:
        """Clean up after a server that is already gone (its socket directory)."""
        shutil.rmtree(self._socket_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedPostgres:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _prepare_data_dir(data_dir: Path, user: pwd.struct_passwd | None) -> None:
    """initdb unless already initialised; under root, hand the directory to `user`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if user is not None:
        _grant_traversal(data_dir)
        if data_dir.stat().st_uid != user.pw_uid:
            for path in [data_dir, *data_dir.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)
    if (data_dir / "PG_VERSION").exists():
        return
    logger.info("initialising a PostgreSQL cluster in %s", data_dir)
    cmd = [_pg_bin("initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust",
           "--encoding=UTF8", "--no-locale", "--no-instructions"]
    _run(cmd, user, data_dir, timeout=180)


def _clear_leftover_server(data_dir: Path, user: pwd.struct_passwd | None) -> None:
    """Deal with a postmaster.pid left behind by a crash, so that the next start works.

    A dead pid is left to PostgreSQL, which removes the file itself after checking that
    no orphaned backend still uses the old shared memory. A live pid that is not our
    postmaster (recycled by another process, or a zombie) would make PostgreSQL refuse
    to start, so that file is removed. A postmaster still running is stopped.
    """
    pid_file = data_dir / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid = int(lines[0])
    except FileNotFoundError:
        return
    except (IndexError, ValueError):
        logger.warning("removing unreadable %s", pid_file)
        pid_file.unlink(missing_ok=True)
        return
    if not _pid_alive(pid):
        logger.info("postmaster.pid names pid %d, which is gone; PostgreSQL will recover", pid)
    elif _is_our_postgres(pid, data_dir):
        logger.warning("stopping PostgreSQL (pid %d) left running on %s", pid, data_dir)
        cmd = [_pg_bin("pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"]
        _run(cmd, user, data_dir, timeout=60)
    else:
        logger.warning("removing stale postmaster.pid: pid %d is alive but not its postmaster",
                       pid)
        pid_file.unlink(missing_ok=True)
    # Line 5 names the old server's socket directory; remove it if we created it.
    if len(lines) > 4 and Path(lines[4]).name.startswith(_SOCKET_PREFIX):
        shutil.rmtree(lines[4], ignore_errors=True)


def start_postgres(data_dir: Path, port: int = 0, host: str = "127.0.0.1") -> EmbeddedPostgres:
    """Start PostgreSQL on `data_dir` (created if new) and ensure database 'ragchat' exists.

    Port 0 picks a free port. Data persists across restarts on the same directory.
    """
    data_dir = Path(data_dir).resolve()
    user = _system_user()
    _prepare_data_dir(data_dir, user)
    _clear_leftover_server(data_dir, user)
    log_file = data_dir / "server.log"
    for attempt in range(1, _START_ATTEMPTS + 1):
        chosen = port or free_port(host)
        socket_dir = _make_socket_dir(user)
        cmd = [_pg_bin("pg_ctl"), "-D", str(data_dir), "-l", str(log_file), "-w", "-t", "60",
               "-o", f"-h {host} -p {chosen} -k {socket_dir}", "start"]
        try:
            _run(cmd, user, data_dir, timeout=90)
            break
        except RuntimeError as exc:
            _clear_leftover_server(data_dir, user)
            shutil.rmtree(socket_dir, ignore_errors=True)
            if port or attempt == _START_ATTEMPTS:
                raise RuntimeError(f"PostgreSQL did not start: {exc}\n{_tail(log_file)}") from exc
            logger.info("PostgreSQL did not start on port %d; trying another port", chosen)
    server = EmbeddedPostgres(data_dir, host, chosen, socket_dir, user)
    try:
        _wait_for_postgres(server.dsn_for("postgres"))
        server.create_database(DATABASE)
    except BaseException:
        server.stop()
        raise
    logger.info("PostgreSQL ready on %s:%d (data in %s)", host, chosen, data_dir)
    return server


def _make_socket_dir(user: pwd.struct_passwd | None) -> Path:
    # Unix socket paths are limited to ~107 bytes, so the socket lives in a short /tmp path.
    base = "/tmp" if Path("/tmp").is_dir() else None
    socket_dir = Path(tempfile.mkdtemp(prefix=_SOCKET_PREFIX, dir=base))
    if user is not None:
        os.chown(socket_dir, user.pw_uid, user.pw_gid)
    return socket_dir


def _wait_for_postgres(dsn: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(dsn, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""

