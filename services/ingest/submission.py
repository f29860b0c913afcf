"""Accepting uploads and deleting documents: S3 first, then PostgreSQL, then SQS.

Everything acts for the current tenant: raw objects are stored under `<tenant>/`, and
queue messages name the tenant their job belongs to.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence

from services.common.errors import Conflict, InvalidArgument, Unavailable
from services.common.filetypes import content_type_for, detect_kind
from services.common.idempotency import RequestKey, RequestLog
from services.common.tenancy import DEFAULT_TENANT, current_tenant, valid_tenant
from services.common.types import DocumentMeta
from services.common.uploads import validate_upload
from services.common.vectorstore.base import VectorStore
from services.ingest.adapters import BlobStore, JobQueue
from services.ingest.jobs import JobRepository, delete_document_row
from services.ingest.versions import Accepted, DocumentVersions, RequestIdTaken, Upload

logger = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_TAGS = 32


class Submissions:
    """Stores raw files and queues them; deletes documents everywhere they live."""

    def __init__(
        self,
        repo: JobRepository,
        blobs: BlobStore,
        queue: JobQueue,
        store: VectorStore,
        max_bytes: int,
    ) -> None:
        self._repo = repo
        self._versions = DocumentVersions(repo.pool)
        self._requests = RequestLog(repo.pool)
        self._blobs = blobs
        self._queue = queue
        self._store = store
        self._max_bytes = max_bytes

    def submit(
        self,
        filename: str,
        content_type: str,
        data: bytes,
        tags: Sequence[str] = (),
        title: str = "",
    ) -> tuple[str, str]:
        """Returns (job_id, document_id) once the job is durably queued."""
        accepted = self.accept(filename, content_type, data, tags, title)
        return accepted.job_id, accepted.document_id

    def accept(
        self,
        filename: str,
        content_type: str,
        data: bytes,
        tags: Sequence[str] = (),
        title: str = "",
        document_key: str = "",
        request_id: str = "",
    ) -> Accepted:
        """Store, record and queue an upload; see DocumentVersions.record for versions.

        A retry with the same `request_id` returns the original outcome; the same
        request_id with a different request raises Conflict.
        """
        kind = validate_upload(filename, content_type, len(data), self._max_bytes, data)
        clean_tags = tuple(sorted({t.strip() for t in tags if t.strip()}))
        if len(clean_tags) > MAX_TAGS:
            raise InvalidArgument(f"at most {MAX_TAGS} tags are allowed", field="tags")
        document_key, request_id = _key(document_key, "document_key"), _key(request_id,
                                                                            "request_id")
        sha256 = hashlib.sha256(data).hexdigest()
        request_hash = hashlib.sha256(json.dumps(
            [filename, content_type, sha256, clean_tags, title, document_key]
        ).encode()).hexdigest()
        if request_id and (earlier := self._replay(request_id, request_hash)):
            return earlier
        current = self._versions.current(document_key) if document_key else None
        if current is not None and current.sha256 == sha256:
            return Accepted(current.job_id, current.document_id, current.version, False)
        document_id = current.document_id if current else uuid.uuid4().hex
        job_id = uuid.uuid4().hex
        safe_name = _UNSAFE.sub("_", filename.rsplit("/", 1)[-1])[:200] or "upload"
        upload = Upload(
            job_id=job_id,
            meta=DocumentMeta(document_id=document_id, title=title.strip() or filename,
                              source=filename, content_type=content_type_for(kind),
                              tags=clean_tags),
            size_bytes=len(data), sha256=sha256,
            object_key=f"{current_tenant()}/documents/{document_id}/{job_id}/{safe_name}",
            document_key=document_key, request_id=request_id, request_hash=request_hash,
        )
        self._repo.ensure_available()  # fail fast, before anything is stored
        self._blobs.put(upload.object_key, data, upload.meta.content_type)
        try:
            accepted = self._versions.record(upload)
        except RequestIdTaken:
            self._blobs.discard(upload.object_key)
            return self._replay(request_id, request_hash) or _raise_taken(request_id)
        except Exception:
            self._blobs.discard(upload.object_key)  # no raw file outlives a failed upload
            raise
        if not accepted.created:
            self._blobs.discard(upload.object_key)
            return accepted
        self._send(accepted, upload.object_key, kind)
        return accepted

    def _replay(self, request_id: str, request_hash: str) -> Accepted | None:
        found = self._versions.find_request(request_id)
        if found is None:
            return None
        stored_hash, accepted = found
        if stored_hash != request_hash:
            raise Conflict(
                f"Idempotency-Key {request_id!r} was already used for a different upload",
                metadata={"request_id": request_id},
            )
        return accepted

    def _send(self, accepted: Accepted, key: str, kind: str) -> None:
        try:
            self._queue.send(_message(accepted.job_id, accepted.document_id, key, kind,
                                      accepted.version))
        except Unavailable:
            if accepted.version == 1:
                # Undo, so that a client retry does not leave a duplicate document behind.
                self._repo.delete_document(accepted.document_id)
                self._blobs.discard(key)
            else:
                # The version stays queued: the stale-job sweep sends it, and a retry
                # (same key, same content) finds it instead of adding another.
                logger.warning("job %s recorded but not sent; the sweep will re-send it",
                               accepted.job_id)
            raise
        logger.info("queued job %s for document %s version %d", accepted.job_id,
                    accepted.document_id, accepted.version)

    def requeue(self, job_id: str) -> None:
        """Send a job's message again (used for jobs whose message was lost)."""
        job = self._repo.get(job_id)
        doc = self._repo.document(job.document_id)
        kind = detect_kind(doc.meta.source, doc.meta.content_type)
        self._queue.send(_message(job_id, job.document_id, doc.object_key, kind, job.version))
        self._repo.touch(job_id)

    def delete(self, document_id: str, key: RequestKey | None = None) -> None:
        """Remove the document everywhere: its row (with jobs, versions and chunks in
        PostgreSQL), then its chunks in the store, then every version's raw file.

        The row goes first: a worker still indexing it checks the row after writing
        (JobRepository.finish) and removes what it wrote, so nothing is resurrected.
        A retry with the same `key` succeeds again, and finishes the clean-up.
        """
        outcome = self._requests.once(
            key, lambda conn: {"keys": delete_document_row(conn, document_id)}
        )
        keys = outcome["keys"]
        self._store.delete_document(document_id)
        for key in keys:
            self._blobs.discard(key)


def _key(value: str, name: str) -> str:
    value = value.strip()
    if len(value) > 200 or not value.isprintable():
        raise InvalidArgument(f"{name} must be at most 200 printable characters", field=name)
    return value


def _raise_taken(request_id: str) -> Accepted:
    raise Unavailable(f"Idempotency-Key {request_id!r} is being used by a concurrent request")


def _message(job_id: str, document_id: str, key: str, kind: str, version: int) -> dict[str, str]:
    """The queue message of a job; the worker runs it as `tenant` (see message_tenant)."""
    return {"job_id": job_id, "document_id": document_id, "object_key": key, "kind": kind,
            "version": str(version), "tenant": current_tenant()}


def message_tenant(body: Mapping[str, object]) -> str:
    """The tenant a queue message acts for; messages from before tenants: the default."""
    tenant = str(body.get("tenant") or DEFAULT_TENANT)
    if not valid_tenant(tenant):
        raise InvalidArgument(f"queue message with an invalid tenant {tenant!r}")
    return tenant
