"""Idempotency keys (`request_id`) of mutating RPCs: a retry replays the first outcome.

An outcome is recorded in `request_log` in the same transaction as the work it
describes, so a retry can never apply the work twice. Keys are honoured for
REQUEST_ID_TTL; after that the same key starts afresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from psycopg import Connection
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from services.common.db import maintenance_connection
from services.common.errors import Conflict, InvalidArgument, Unavailable
from services.common.runner import pause

logger = logging.getLogger(__name__)

REQUEST_ID_TTL = "24 hours"
MAX_REQUEST_ID_CHARS = 200
Outcome = dict[str, Any]

_FIND = (
    "SELECT fingerprint, outcome FROM request_log WHERE method = %s AND request_id = %s"
    f" AND created_at > now() - interval '{REQUEST_ID_TTL}'"
)
# Takes over an expired key; a live one is left alone (nothing returned).
_INSERT = (
    "INSERT INTO request_log (method, request_id, fingerprint, outcome)"
    " VALUES (%s, %s, %s, %s) ON CONFLICT (tenant_id, method, request_id) DO UPDATE"
    " SET fingerprint = excluded.fingerprint, outcome = excluded.outcome, created_at = now()"
    f" WHERE request_log.created_at <= now() - interval '{REQUEST_ID_TTL}' RETURNING 1"
)
_PURGE = f"DELETE FROM request_log WHERE created_at <= now() - interval '{REQUEST_ID_TTL}'"


@dataclass(frozen=True)
class RequestKey:
    """A request's idempotency key, scoped to its RPC, and what the request said."""

    method: str
    request_id: str
    fingerprint: str


def request_key(method: str, request: Message) -> RequestKey | None:
    """The key of a request with a `request_id` field; None when it is empty."""
    request_id = getattr(request, "request_id", "").strip()
    if not request_id:
        return None
    if len(request_id) > MAX_REQUEST_ID_CHARS or not request_id.isprintable():
        raise InvalidArgument(
            f"request_id must be at most {MAX_REQUEST_ID_CHARS} printable characters",
            field="request_id",
        )
    rest = type(request)()
    rest.CopyFrom(request)
    rest.ClearField("request_id")
    digest = hashlib.sha256(rest.SerializeToString(deterministic=True)).hexdigest()
    return RequestKey(method, request_id, digest)


class _Raced(Exception):
    """A concurrent request recorded the same key first."""


class RequestLog:
    """Runs work at most once per key (sync; async callers run it in a thread)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def once(self, key: RequestKey | None, work: Callable[[Connection[Any]], Outcome]) -> Outcome:
        """work(conn) inside a transaction, its outcome recorded under `key`.

        A request that repeats a recorded key gets the recorded outcome and no work
        is done; the same key with a different request raises Conflict. Errors are
        not recorded, so a failed request can be retried with the same key.
        """
        for _ in range(2):
            try:
                with self._pool.connection() as conn, conn.transaction():
                    if key is not None and (earlier := _find(conn, key)) is not None:
                        return earlier
                    outcome = work(conn)
                    if key is not None:
                        _record(conn, key, outcome)
                    return outcome
            except _Raced:
                continue  # rolled back; the next pass finds the winner's outcome
        assert key is not None
        raise Unavailable(f"request_id {key.request_id!r} is in use by a concurrent request")

    def purge(self) -> int:
        """Forget expired keys of every tenant; returns how many."""
        with maintenance_connection(self._pool) as conn:
            return conn.execute(_PURGE).rowcount

    async def purge_every(self, interval_s: float, stop: asyncio.Event) -> None:
        """Background loop: forget expired keys every `interval_s` until `stop`."""
        while not stop.is_set():
            try:
                if purged := await asyncio.to_thread(self.purge):
                    logger.info("forgot %d expired request ids", purged)
            except Exception:  # noqa: BLE001 - retried on the next tick
                logger.warning("request-id purge failed", exc_info=True)
            await pause(stop, interval_s)


def _find(conn: Connection[Any], key: RequestKey) -> Outcome | None:
    row = conn.execute(_FIND, (key.method, key.request_id)).fetchone()
    if row is None:
        return None
    if row[0] != key.fingerprint:
        raise Conflict(
            f"request_id {key.request_id!r} was already used for a different request",
            metadata={"request_id": key.request_id},
        )
    return dict(row[1])


def _record(conn: Connection[Any], key: RequestKey, outcome: Outcome) -> None:
    inserted = conn.execute(
        _INSERT, (key.method, key.request_id, key.fingerprint, Jsonb(outcome))
    ).fetchone()
    if inserted is None:
        raise _Raced(key.request_id)
