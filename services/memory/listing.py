"""Session summaries: keyset-paged listing (most recently updated first) and titles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg_pool import ConnectionPool

from services.common.errors import InvalidArgument, NotFound
from services.common.paging import PageKey
from services.common.types import HistoryTurn

MAX_TITLE_CHARS = 200
DEFAULT_TITLE_CHARS = 80

_SUMMARY = (
    "SELECT s.session_id, s.title, s.created_at, s.updated_at,"
    " (SELECT count(*) FROM turns t WHERE t.session_id = s.session_id)"
    " FROM sessions s"
)


@dataclass(frozen=True)
class SessionSummary:
    session_id: str
    title: str
    created_at: datetime
    updated_at: datetime
    turn_count: int


def default_title(turns: Sequence[HistoryTurn]) -> str:
    """The start of the first user turn, on one line; "" if there is none."""
    for turn in turns:
        if turn.role == "user":
            text = " ".join(turn.content.split())
            if len(text) <= DEFAULT_TITLE_CHARS:
                return text
            return text[: DEFAULT_TITLE_CHARS - 1].rstrip() + "…"
    return ""


def session_key(summary: SessionSummary) -> PageKey:
    """Where a page ending at `summary` ends (services.common.paging encodes it)."""
    return summary.updated_at, summary.session_id


def check_title(title: str) -> str:
    """The title stripped; InvalidArgument if blank or too long."""
    stripped = title.strip()
    if not stripped:
        raise InvalidArgument("title must not be empty", field="title")
    if len(stripped) > MAX_TITLE_CHARS:
        raise InvalidArgument(f"title exceeds {MAX_TITLE_CHARS} characters", field="title")
    return stripped


class SessionIndex:
    """Sync reads and renames of session summaries; callers run it in a thread."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def page(self, limit: int, after: PageKey | None) -> list[SessionSummary]:
        """Up to `limit` sessions after `after`, most recently updated first."""
        where, params = "", ()
        if after is not None:
            where, params = " WHERE (s.updated_at, s.session_id) < (%s, %s)", after
        with self._pool.connection() as conn:
            rows = conn.execute(
                _SUMMARY + where + " ORDER BY s.updated_at DESC, s.session_id DESC LIMIT %s",
                (*params, limit),
            ).fetchall()
        return [SessionSummary(*row) for row in rows]

    def rename(self, session_id: str, title: str) -> SessionSummary:
        """Set the title (and updated time); NotFound if there is no such session."""
        with self._pool.connection() as conn:
            cur = conn.execute(
                "UPDATE sessions SET title = %s, updated_at = now() WHERE session_id = %s",
                (check_title(title), session_id),
            )
            if cur.rowcount == 0:
                raise NotFound(
                    f"session {session_id!r} not found",
                    reason="SESSION_NOT_FOUND",
                    metadata={"session_id": session_id},
                )
            row = conn.execute(_SUMMARY + " WHERE s.session_id = %s", (session_id,)).fetchone()
        assert row is not None
        return SessionSummary(*row)
