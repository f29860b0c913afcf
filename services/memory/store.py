"""Conversation sessions and their turns, stored in PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg_pool import ConnectionPool

from services.common.errors import InvalidArgument, NotFound
from services.common.idempotency import Outcome, RequestKey, RequestLog
from services.common.types import HistoryTurn
from services.memory.listing import SessionIndex, default_title

ROLES = ("user", "assistant")
MAX_TURN_CHARS = 100_000


@dataclass(frozen=True)
class StoredTurn:
    role: str
    content: str
    created_at: datetime


@dataclass(frozen=True)
class Session:
    session_id: str
    created_at: datetime
    turns: tuple[StoredTurn, ...]


class SessionStore:
    """Sync store; callers run it in a thread from async code.

    The mutating methods take an optional RequestKey: a retry with the same key
    returns the first call's outcome instead of acting again (see RequestLog).
    """

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self.requests = RequestLog(pool)
        self.index = SessionIndex(pool)

    def create(self, key: RequestKey | None = None) -> Session:
        def work(conn: Connection[Any]) -> Outcome:
            session_id = uuid.uuid4().hex
            row = conn.execute(
                "INSERT INTO sessions (session_id) VALUES (%s) RETURNING created_at",
                (session_id,),
            ).fetchone()
            assert row is not None
            return {"session_id": session_id, "created_at": row[0].isoformat()}

        outcome = self.requests.once(key, work)
        created_at = datetime.fromisoformat(outcome["created_at"])
        return Session(session_id=outcome["session_id"], created_at=created_at, turns=())

    def get(self, session_id: str, max_turns: int = 0) -> Session:
        """The session with its turns oldest first; only the last `max_turns` if > 0."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT created_at FROM sessions WHERE session_id = %s", (session_id,)
            ).fetchone()
            if row is None:
                raise _not_found(session_id)
            limit = max_turns if max_turns > 0 else None
            rows = conn.execute(
                "SELECT role, content, created_at FROM ("
                " SELECT seq, role, content, created_at FROM turns WHERE session_id = %s"
                " ORDER BY seq DESC LIMIT %s) t ORDER BY seq",
                (session_id, limit),
            ).fetchall()
        turns = tuple(StoredTurn(role=r[0], content=r[1], created_at=r[2]) for r in rows)
        return Session(session_id=session_id, created_at=row[0], turns=turns)

    def append(
        self, session_id: str, turns: Sequence[HistoryTurn], key: RequestKey | None = None
    ) -> int:
        """Append turns in order; returns the session's turn count afterwards."""
        _check_turns(turns)

        def work(conn: Connection[Any]) -> Outcome:
            # Lock the session row so concurrent appends get consecutive sequence numbers.
            row = conn.execute(
                "SELECT 1 FROM sessions WHERE session_id = %s FOR UPDATE", (session_id,)
            ).fetchone()
            if row is None:
                raise _not_found(session_id)
            count_row = conn.execute(
                "SELECT count(*) FROM turns WHERE session_id = %s", (session_id,)
            ).fetchone()
            start = int(count_row[0]) if count_row else 0
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO turns (session_id, seq, role, content) VALUES (%s, %s, %s, %s)",
                    [(session_id, start + i, t.role, t.content) for i, t in enumerate(turns)],
                )
            # An untitled session takes its first question as title.
            conn.execute(
                "UPDATE sessions SET updated_at = now(),"
                " title = CASE WHEN title = '' THEN %s ELSE title END WHERE session_id = %s",
                (default_title(turns), session_id),
            )
            return {"turn_count": start + len(turns)}

        return int(self.requests.once(key, work)["turn_count"])

    def delete(self, session_id: str, key: RequestKey | None = None) -> None:
        def work(conn: Connection[Any]) -> Outcome:
            cur = conn.execute("DELETE FROM sessions WHERE session_id = %s", (session_id,))
            if cur.rowcount == 0:
                raise _not_found(session_id)
            return {}

        self.requests.once(key, work)


def _check_turns(turns: Sequence[HistoryTurn]) -> None:
    if not turns:
        raise InvalidArgument("at least one turn is required", field="turns")
    for i, turn in enumerate(turns):
        if turn.role not in ROLES:
            raise InvalidArgument(
                f"turn role must be one of {', '.join(ROLES)}", field=f"turns[{i}].role"
            )
        if not turn.content.strip():
            raise InvalidArgument("turn content must not be empty", field=f"turns[{i}].content")
        if len(turn.content) > MAX_TURN_CHARS:
            raise InvalidArgument(
                f"turn content exceeds {MAX_TURN_CHARS} characters", field=f"turns[{i}].content"
            )


def _not_found(session_id: str) -> NotFound:
    return NotFound(
        f"session {session_id!r} not found",
        reason="SESSION_NOT_FOUND",
        metadata={"session_id": session_id},
    )
