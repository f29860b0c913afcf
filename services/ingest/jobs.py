"""Documents and their indexing jobs, in PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg_pool import ConnectionPool

from services.common.db import Pool, maintenance_connection
from services.common.errors import InvalidArgument, NotFound, Unavailable
from services.common.paging import PageKey  # (created_at, document_id) of a page's end
from services.common.tenancy import DEFAULT_TENANT
from services.common.types import DocumentMeta

STATUSES = ("queued", "processing", "indexed", "failed", "superseded")


@dataclass(frozen=True)
class Job:
    job_id: str
    document_id: str
    status: str
    error: str
    attempts: int
    chunk_count: int
    updated_at: datetime
    version: int = 1
    tenant_id: str = DEFAULT_TENANT


@dataclass(frozen=True)
class DocumentRow:
    meta: DocumentMeta  # meta.version is the current (latest uploaded) version
    size_bytes: int
    object_key: str
    status: str
    chunk_count: int
    document_key: str = ""


@dataclass(frozen=True)
class VersionRow:
    version: int
    sha256: str
    size_bytes: int
    content_type: str
    source: str
    created_at: datetime
    job_id: str
    status: str
    chunk_count: int


_JOB_COLUMNS = (
    "job_id, document_id, status, error, attempts, chunk_count, updated_at, version, tenant_id"
)
_VERSIONS = """
SELECT v.version, v.sha256, v.size_bytes, v.content_type, v.source, v.created_at,
       coalesce(j.job_id, ''), coalesce(j.status, 'queued'), coalesce(j.chunk_count, 0)
FROM document_versions v LEFT JOIN LATERAL (
    SELECT job_id, status, chunk_count FROM jobs
    WHERE jobs.document_id = v.document_id AND jobs.version = v.version
    ORDER BY created_at DESC LIMIT 1) j ON true
WHERE v.document_id = %s ORDER BY v.version DESC
"""
# Marks older versions' raw files as removed and returns their keys, in one statement.
_RETIRE = """
UPDATE document_versions v SET object_key = '' FROM (
    SELECT document_id, version, object_key FROM document_versions
    WHERE document_id = %s AND version < %s AND object_key <> '' FOR UPDATE) o
WHERE v.document_id = o.document_id AND v.version = o.version
RETURNING o.object_key
"""


class JobRepository:
    """Sync repository; async callers run it in a thread."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def ensure_available(self) -> None:
        """Raise Unavailable at once while the database is known to be down."""
        if isinstance(self._pool, Pool) and not self._pool.healthy:
            raise Unavailable("the database is unavailable")

    @property
    def pool(self) -> ConnectionPool:
        return self._pool

    def get(self, job_id: str) -> Job:
        with self._pool.connection() as conn:
            row = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = %s", (job_id,)
            ).fetchone()
        if row is None:
            raise NotFound(
                f"job {job_id!r} not found", reason="JOB_NOT_FOUND", metadata={"job_id": job_id}
            )
        return Job(*row)

    def get_or_none(self, job_id: str) -> Job | None:
        try:
            return self.get(job_id)
        except NotFound:
            return None

    def start(self, job_id: str) -> Job | None:
        """Mark a job processing and count the attempt; None if it no longer exists."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "UPDATE jobs SET status = 'processing', attempts = attempts + 1, error = '',"
                f" updated_at = now() WHERE job_id = %s RETURNING {_JOB_COLUMNS}",
                (job_id,),
            ).fetchone()
        return Job(*row) if row else None

    def finish(self, job_id: str, chunk_count: int) -> bool:
        """Mark indexed; False when the job (and so its document) no longer exists."""
        return self._set(job_id, "indexed", "", chunk_count)

    def fail(self, job_id: str, error: str) -> bool:
        return self._set(job_id, "failed", error)

    def supersede(self, job_id: str) -> bool:
        """Mark a job whose version is no longer its document's current one; False if gone."""
        with self._pool.connection() as conn:
            cur = conn.execute(
                "UPDATE jobs j SET status = 'superseded', chunk_count = 0, updated_at = now(),"
                " error = 'superseded by version ' || d.version FROM documents d"
                " WHERE d.document_id = j.document_id AND j.job_id = %s",
                (job_id,),
            )
        return cur.rowcount > 0

    def requeue_after_error(self, job_id: str, error: str) -> bool:
        return self._set(job_id, "queued", error)

    def requeue_if_processing(self, job_id: str, note: str) -> bool:
        """Put a running job back to `queued` (its worker is shutting down)."""
        return self._set(job_id, "queued", note, only_from=("processing",))

    def fail_unless_settled(self, job_id: str, error: str) -> bool:
        """Mark a job failed unless it already ended (used for dead-lettered messages)."""
        return self._set(job_id, "failed", error, only_from=("queued", "processing"))

    def reset_failed(self, job_id: str) -> bool:
        """Make a failed job `queued` again with a fresh attempt budget (redrive)."""
        return self._set(job_id, "queued", "", only_from=("failed",), reset_attempts=True)

    def failed_jobs(self, limit: int = 1000) -> list[Job]:
        """Failed jobs of every tenant (for the redrive tool)."""
        with maintenance_connection(self._pool) as conn:
            rows = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status = 'failed'"
                " ORDER BY updated_at LIMIT %s",
                (limit,),
            ).fetchall()
        return [Job(*r) for r in rows]

    def _set(
        self,
        job_id: str,
        status: str,
        error: str,
        chunk_count: int = 0,
        *,
        only_from: tuple[str, ...] = (),
        reset_attempts: bool = False,
    ) -> bool:
        """Move a job to `status`; with `only_from`, only from one of those statuses.
        False when no job moved (gone, or in another status)."""
        query = (
            "UPDATE jobs SET status = %s, error = %s, chunk_count = %s, updated_at = now()"
            + (", attempts = 0" if reset_attempts else "")
            + " WHERE job_id = %s"
            + (" AND status = ANY(%s)" if only_from else "")
        )
        params: tuple[object, ...] = (status, error[:2000], chunk_count, job_id)
        with self._pool.connection() as conn:
            cur = conn.execute(query, (*params, list(only_from)) if only_from else params)
        return cur.rowcount > 0

    def document(self, document_id: str) -> DocumentRow:
        rows = self._documents("WHERE d.document_id = %s", (document_id,), 1)
        if not rows:
            raise document_not_found(document_id)
        return rows[0]

    def document_or_none(self, document_id: str) -> DocumentRow | None:
        rows = self._documents("WHERE d.document_id = %s", (document_id,), 1)
        return rows[0] if rows else None

    def list_documents(self, limit: int, after: PageKey | None = None) -> list[DocumentRow]:
        """Newest first; `after` is the last row of the previous page (keyset paging)."""
        if limit <= 0:
            raise InvalidArgument("page_size must be positive", field="page_size")
        if not after:
            return self._documents("", (), limit)
        return self._documents("WHERE (d.created_at, d.document_id) < (%s, %s)", after, limit)

    def _documents(self, where: str, params: tuple[object, ...], limit: int) -> list[DocumentRow]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT d.document_id, d.title, d.source, d.content_type, d.tags, d.created_at,"
                " d.size_bytes, d.object_key, coalesce(j.status, 'queued'),"
                " coalesce(j.chunk_count, 0), d.version, coalesce(d.document_key, '')"
                " FROM documents d LEFT JOIN LATERAL (SELECT status, chunk_count FROM jobs"
                "  WHERE jobs.document_id = d.document_id ORDER BY created_at DESC LIMIT 1) j"
                f"  ON true {where} ORDER BY d.created_at DESC, d.document_id DESC LIMIT %s",
                (*params, limit),
            ).fetchall()
        return [
            DocumentRow(
                meta=DocumentMeta(
                    document_id=r[0], title=r[1], source=r[2], content_type=r[3],
                    tags=tuple(r[4]), created_at=r[5], version=r[10],
                ),
                size_bytes=r[6],
                object_key=r[7],
                status=r[8],
                chunk_count=r[9],
                document_key=r[11],
            )
            for r in rows
        ]

    def versions(self, document_id: str) -> list[VersionRow]:
        """Every uploaded version with its job's state, newest first."""
        with self._pool.connection() as conn:
            rows = conn.execute(_VERSIONS, (document_id,)).fetchall()
        return [VersionRow(*r) for r in rows]

    def retire_versions_before(self, document_id: str, version: int) -> list[str]:
        """Forget the raw files of versions older than `version`; returns their keys."""
        with self._pool.connection() as conn:
            return [r[0] for r in conn.execute(_RETIRE, (document_id, version)).fetchall()]

    def delete_document(self, document_id: str) -> list[str]:
        """Delete the document row (chunks, jobs, versions cascade); returns raw-file keys."""
        with self._pool.connection() as conn, conn.transaction():
            return delete_document_row(conn, document_id)

    def stale_jobs(self, older_than_s: float) -> list[Job]:
        """Jobs of every tenant stuck in queued/processing longer than `older_than_s`."""
        with maintenance_connection(self._pool) as conn:
            rows = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status IN ('queued', 'processing')"
                " AND updated_at < now() - make_interval(secs => %s) ORDER BY updated_at",
                (older_than_s,),
            ).fetchall()
        return [Job(*r) for r in rows]

    def touch(self, job_id: str) -> None:
        with self._pool.connection() as conn:
            conn.execute("UPDATE jobs SET updated_at = now() WHERE job_id = %s", (job_id,))


def delete_document_row(conn: Connection[Any], document_id: str) -> list[str]:
    """Delete the document row inside the caller's transaction; returns raw-file keys."""
    keys = [r[0] for r in conn.execute(
        "SELECT object_key FROM document_versions WHERE document_id = %s"
        " AND object_key <> '' UNION SELECT object_key FROM documents"
        " WHERE document_id = %s AND object_key <> ''", (document_id, document_id),
    ).fetchall()]
    cur = conn.execute("DELETE FROM documents WHERE document_id = %s", (document_id,))
    if cur.rowcount == 0:
        raise document_not_found(document_id)
    return sorted(keys)


def document_not_found(document_id: str) -> NotFound:
    return NotFound(
        f"document {document_id!r} not found",
        reason="DOCUMENT_NOT_FOUND",
        metadata={"document_id": document_id},
    )
