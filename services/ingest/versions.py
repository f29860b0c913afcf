"""Recording uploads: new documents, new versions of keyed documents, idempotency keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

from services.common.types import DocumentMeta


@dataclass(frozen=True)
class Accepted:
    """What an upload resulted in; `created` is False when nothing new was queued."""

    job_id: str
    document_id: str
    version: int
    created: bool = True


@dataclass(frozen=True)
class Upload:
    """One upload as it is recorded (the raw file is already stored at object_key)."""

    job_id: str
    meta: DocumentMeta
    size_bytes: int
    sha256: str
    object_key: str
    document_key: str = ""
    request_id: str = ""
    request_hash: str = ""


@dataclass(frozen=True)
class Current:
    """The current version of a keyed document."""

    document_id: str
    version: int
    sha256: str
    job_id: str


class RequestIdTaken(Exception):
    """Another request recorded the same idempotency key first; read it and compare."""


_CURRENT = (
    "SELECT d.document_id, d.version, d.sha256, coalesce(j.job_id, '') FROM documents d"
    " LEFT JOIN LATERAL (SELECT job_id FROM jobs WHERE jobs.document_id = d.document_id"
    "  AND jobs.version = d.version ORDER BY created_at DESC LIMIT 1) j ON true"
    " WHERE d.document_key = %s"
)
_INSERT_DOCUMENT = (
    "INSERT INTO documents (document_id, title, source, content_type, size_bytes, sha256,"
    " tags, object_key, document_key, version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 1)"
)
_NEW_VERSION = (
    "UPDATE documents SET version = %s, title = %s, source = %s, content_type = %s,"
    " size_bytes = %s, sha256 = %s, tags = %s, object_key = %s WHERE document_id = %s"
)


class DocumentVersions:
    """Sync repository; async callers run it in a thread."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def find_request(self, request_id: str) -> tuple[str, Accepted] | None:
        """(request hash, original outcome) of an idempotency key, if recorded."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT request_hash, job_id, document_id, version FROM idempotency_keys"
                " WHERE request_id = %s", (request_id,),
            ).fetchone()
        return (row[0], Accepted(row[1], row[2], row[3], created=False)) if row else None

    def current(self, document_key: str) -> Current | None:
        with self._pool.connection() as conn:
            row = conn.execute(_CURRENT, (document_key,)).fetchone()
        return Current(*row) if row else None

    def record(self, upload: Upload) -> Accepted:
        """A new document, or a new version of the keyed one, with its queued job.

        Content equal to the keyed document's current version records nothing
        (created=False). Raises RequestIdTaken if the idempotency key was recorded
        concurrently; nothing is written then.
        """
        for attempt in range(2):
            try:
                with self._pool.connection() as conn, conn.transaction():
                    accepted = self._record(conn, upload)
                    if upload.request_id:
                        _remember(conn, upload, accepted)
                    return accepted
            except pg_errors.UniqueViolation as exc:
                if exc.diag.constraint_name == "idempotency_keys_pkey":
                    raise RequestIdTaken(upload.request_id) from exc
                if attempt:  # the keyed document was created concurrently: now it exists
                    raise
        raise AssertionError("unreachable")

    def _record(self, conn: Connection[Any], upload: Upload) -> Accepted:
        meta = upload.meta
        row = None
        if upload.document_key:
            row = conn.execute(
                "SELECT document_id, version, sha256 FROM documents WHERE document_key = %s"
                " FOR UPDATE", (upload.document_key,),
            ).fetchone()
        if row is None:
            version, document_id = 1, meta.document_id
            conn.execute(_INSERT_DOCUMENT, (
                document_id, meta.title, meta.source, meta.content_type, upload.size_bytes,
                upload.sha256, list(meta.tags), upload.object_key, upload.document_key or None,
            ))
        else:
            document_id, current, sha256 = row
            if sha256 == upload.sha256:
                job = conn.execute(
                    "SELECT job_id FROM jobs WHERE document_id = %s AND version = %s"
                    " ORDER BY created_at DESC LIMIT 1", (document_id, current),
                ).fetchone()
                return Accepted(job[0] if job else "", document_id, current, created=False)
            version = current + 1
            conn.execute(_NEW_VERSION, (
                version, meta.title, meta.source, meta.content_type, upload.size_bytes,
                upload.sha256, list(meta.tags), upload.object_key, document_id,
            ))
        conn.execute(
            "INSERT INTO document_versions (document_id, version, sha256, size_bytes,"
            " object_key, content_type, source) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (document_id, version, upload.sha256, upload.size_bytes, upload.object_key,
             meta.content_type, meta.source),
        )
        conn.execute(
            "INSERT INTO jobs (job_id, document_id, status, version) VALUES (%s, %s, 'queued', %s)",
            (upload.job_id, document_id, version),
        )
        return Accepted(upload.job_id, document_id, version)


def _remember(conn: Connection[Any], upload: Upload, accepted: Accepted) -> None:
    conn.execute(
        "INSERT INTO idempotency_keys (request_id, request_hash, document_id, job_id, version)"
        " VALUES (%s, %s, %s, %s, %s)",
        (upload.request_id, upload.request_hash, accepted.document_id, accepted.job_id,
         accepted.version),
    )
