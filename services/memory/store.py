"""Conversation sessions and their turns, stored in PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg_pool import ConnectionPool

from services.common.errors import InvalidArgument, NotFound
from services.common.types import HistoryTurn

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
    """Sync store; callers run it in a thread from async code."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def create(self) -> Session:
        session_id = uuid.uuid4().hex
        with self._pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO sessions (session_id) VALUES (%s) RETURNING created_at",
                (session_id,),
            ).fetchone()
        assert row is not None
        return Session(session_id=session_id, created_at=row[0], turns=())

    def get(self, session_id: str, max_turns: int = 0) -> Session:
        """The session with its turns oldest first; only the last `max_turns` if > 0."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT created_at FROM sessions WHERE session_id = %s", (session_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"session {session_id!r} not found")
            limit = max_turns if max_turns > 0 else None
            rows = conn.execute(
                "SELECT role, content, created_at FROM ("
                " SELECT seq, role, content, created_at FROM turns WHERE session_id = %s"
                " ORDER BY seq DESC LIMIT %s) t ORDER BY seq",
                (session_id, limit),
            ).fetchall()
        turns = tuple(StoredTurn(role=r[0], content=r[1], created_at=r[2]) for r in rows)
        return Session(session_id=session_id, created_at=row[0], turns=turns)

    def append(self, session_id: str, turns: Sequence[HistoryTurn]) -> int:
        """Append turns in order; returns the session's turn count afterwards."""
        if not turns:
            raise InvalidArgument("at least one turn is required")
        for turn in turns:
            if turn.role not in ROLES:
                raise InvalidArgument(f"turn role must be one of {', '.join(ROLES)}")
            if not turn.content.strip():
                raise InvalidArgument("turn content must not be empty")
            if len(turn.content) > MAX_TURN_CHARS:
                raise InvalidArgument(f"turn content exceeds {MAX_TURN_CHARS} characters")
        with self._pool.connection() as conn, conn.transaction():
            # Lock the session row so concurrent appends get consecutive sequence numbers.
            row = conn.execute(
                "SELECT 1 FROM sessions WHERE session_id = %s FOR UPDATE", (session_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"session {session_id!r} not found")
            count_row = conn.execute(
                "SELECT count(*) FROM turns WHERE session_id = %s", (session_id,)
            ).fetchone()
            start = int(count_row[0]) if count_row else 0
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO turns (session_id, seq, role, content) VALUES (%s, %s, %s, %s)",
                    [(session_id, start + i, t.role, t.content) for i, t in enumerate(turns)],
                )
        return start + len(turns)

    def delete(self, session_id: str) -> None:
        with self._pool.connection() as conn:
            cur = conn.execute("DELETE FROM sessions WHERE session_id = %s", (session_id,))
            if cur.rowcount == 0:
                raise NotFound(f"session {session_id!r} not found")
