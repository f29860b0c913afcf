"""Accepting uploads and deleting documents: S3 first, then PostgreSQL, then SQS."""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Sequence

from services.common.errors import InvalidArgument, Unavailable
from services.common.filetypes import content_type_for, detect_kind
from services.common.types import DocumentMeta
from services.common.uploads import validate_upload
from services.common.vectorstore.base import VectorStore
from services.ingest.adapters import BlobStore, JobQueue
from services.ingest.jobs import JobRepository

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
        kind = validate_upload(filename, content_type, len(data), self._max_bytes)
        clean_tags = tuple(sorted({t.strip() for t in tags if t.strip()}))
        if len(clean_tags) > MAX_TAGS:
            raise InvalidArgument(f"at most {MAX_TAGS} tags are allowed")
        document_id, job_id = uuid.uuid4().hex, uuid.uuid4().hex
        safe_name = _UNSAFE.sub("_", filename.rsplit("/", 1)[-1])[:200] or "upload"
        key = f"documents/{document_id}/{safe_name}"
        meta = DocumentMeta(
            document_id=document_id,
            title=title.strip() or filename,
            source=filename,
            content_type=content_type_for(kind),
            tags=clean_tags,
        )
        self._repo.ensure_available()  # fail fast, before anything is stored
        self._blobs.put(key, data, meta.content_type)
        try:
            self._repo.create(job_id, meta, len(data), hashlib.sha256(data).hexdigest(), key)
        except Exception:
            self._discard_blob(key)  # no raw file may outlive a failed submission
            raise
        try:
            self._queue.send(_message(job_id, document_id, key, kind))
        except Unavailable:
            # Undo, so that a client retry does not leave a duplicate document behind.
            self._repo.delete_document(document_id)
            self._discard_blob(key)
            raise
        logger.info("queued job %s for document %s (%d bytes)", job_id, document_id, len(data))
        return job_id, document_id

    def _discard_blob(self, key: str) -> None:
        try:
            self._blobs.delete(key)
        except Exception:  # noqa: BLE001 - logged; the orphan is harmless but visible
            logger.warning("could not remove the raw file %s of a failed upload", key)

    def requeue(self, job_id: str) -> None:
        """Send a job's message again (used for jobs whose message was lost)."""
        job = self._repo.get(job_id)
        doc = self._repo.document(job.document_id)
        kind = detect_kind(doc.meta.source, doc.meta.content_type)
        self._queue.send(_message(job_id, job.document_id, doc.object_key, kind))
        self._repo.touch(job_id)

    def delete(self, document_id: str) -> None:
        """Remove chunks, the document row (with its jobs) and the raw file."""
        doc = self._repo.document(document_id)
        self._store.delete_document(document_id)
        self._repo.delete_document(document_id)
        try:
            self._blobs.delete(doc.object_key)
        except Unavailable:
            logger.warning("document %s deleted but its raw file was not", document_id)


def _message(job_id: str, document_id: str, key: str, kind: str) -> dict[str, str]:
    return {"job_id": job_id, "document_id": document_id, "object_key": key, "kind": kind}
