"""Client spans for psycopg 3 statements (OpenTelemetry database semantic conventions).

opentelemetry-instrumentation-psycopg has no release matching the project's
opentelemetry-instrumentation 0.66b2 (its newest, 0.66b1, pins 0.66b1), so this does
the same small job: every connection gets a cursor class that wraps each statement
in a CLIENT span. Statement text is recorded, bound parameters never are.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from opentelemetry import trace
from psycopg import sql

_installed = False


def _query_text(query: Any, conn: psycopg.Connection[Any]) -> str:
    if isinstance(query, sql.Composable):
        return query.as_string(conn)
    if isinstance(query, bytes):
        return query.decode(errors="replace")
    return str(query)


@contextmanager
def _statement_span(conn: psycopg.Connection[Any], query: Any) -> Iterator[None]:
    text = _query_text(query, conn)
    if not text.strip():  # the pool's liveness probe: not worth a span
        yield
        return
    operation = text.split(None, 1)[0].upper()
    info = conn.info
    attributes: dict[str, Any] = {
        "db.system.name": "postgresql",
        "db.system": "postgresql",  # the older key, still read by X-Ray's service map
        "db.namespace": info.dbname,
        "db.operation.name": operation,
        "db.query.text": text,
        "server.address": info.host,
    }
    if info.port:
        attributes["server.port"] = int(info.port)
    tracer = trace.get_tracer(__name__)
    with tracer.start_as_current_span(
        f"{operation} {info.dbname}", kind=trace.SpanKind.CLIENT, attributes=attributes
    ):
        yield


class TracedCursor(psycopg.Cursor[Any]):
    """A psycopg cursor whose statements are spans."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> TracedCursor:
        with _statement_span(self.connection, query):
            super().execute(query, params, **kwargs)
        return self

    def executemany(self, query: Any, params_seq: Iterable[Any], **kwargs: Any) -> None:
        with _statement_span(self.connection, query):
            super().executemany(query, params_seq, **kwargs)


def instrument_psycopg() -> None:
    """Give every new psycopg connection (direct or pooled) the traced cursor; idempotent."""
    global _installed
    if _installed:
        return
    original = psycopg.Connection.connect.__func__  # type: ignore[attr-defined]

    def connect(cls: type[psycopg.Connection[Any]], *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cursor_factory", TracedCursor)
        return original(cls, *args, **kwargs)

    psycopg.Connection.connect = classmethod(connect)  # type: ignore[method-assign,assignment]
    psycopg.connect = psycopg.Connection.connect
    _installed = True
