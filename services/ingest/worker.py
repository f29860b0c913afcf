"""The SQS-fed indexing worker.

A message is deleted only after its chunks are committed, so a crashed worker
loses nothing (SQS redelivers) and duplicates nothing (replace_document swaps
a document's chunks atomically).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.common.errors import (
    DocumentDeleted,
    DocumentSuperseded,
    InvalidArgument,
    NotFound,
    RagchatError,
)
from services.common.telemetry import (
    ATTR_CHUNK_COUNT,
    ATTR_DOCUMENT_ID,
    ATTR_JOB_ID,
    extract_message_context,
)
from services.ingest.adapters import BlobStore, JobQueue, QueueMessage
from services.ingest.config import IngestSettings
from services.ingest.jobs import JobRepository
from services.ingest.pipeline import IndexingPipeline

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


class _Heartbeat:
    """Keeps a message invisible while a long document is being indexed."""

    def __init__(self, queue: JobQueue, message: QueueMessage, timeout_s: int) -> None:
        self._queue, self._message, self._timeout = queue, message, timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._timeout / 2):
            try:
                self._queue.extend(self._message, self._timeout)
            except Exception:  # noqa: BLE001 - a missed heartbeat only risks a redelivery
                logger.warning("could not extend message visibility", exc_info=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


class IndexWorker:
    def __init__(
        self,
        repo: JobRepository,
        blobs: BlobStore,
        queue: JobQueue,
        pipeline: IndexingPipeline,
        settings: IngestSettings,
    ) -> None:
        self._repo, self._blobs, self._queue = repo, blobs, queue
        self._pipeline = pipeline
        self._settings = settings

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set; the job in hand is finished first."""
        while not stop.is_set():
            try:
                messages = await asyncio.to_thread(
                    self._queue.receive, 1, self._settings.sqs_wait_s
                )
            except Exception:  # noqa: BLE001 - queue outages must not kill the worker
                logger.warning("receiving from the queue failed; retrying", exc_info=True)
                await asyncio.sleep(2)
                continue
            for message in messages:
                await asyncio.to_thread(self.process, message)

    def process(self, message: QueueMessage) -> None:
        """Index one queued job; acknowledges the message when it is settled."""
        job_id = str(message.body.get("job_id", ""))
        if not job_id:
            logger.error("dropping a malformed queue message")
            self._queue.ack(message)
            return
        parent = extract_message_context(message.attributes)
        with tracer.start_as_current_span(
            "ingest.process_job", context=parent, kind=SpanKind.CONSUMER
        ) as span:
            span.set_attribute(ATTR_JOB_ID, job_id)
            span.set_attribute("messaging.system", "aws_sqs")
            try:
                self._process(job_id, message, span)
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                self._retry_or_fail(job_id, message, exc)

    def _process(self, job_id: str, message: QueueMessage, span: trace.Span) -> None:
        current = self._repo.get_or_none(job_id)
        if current is None or current.status in ("indexed", "superseded"):
            # Deleted meanwhile, or a duplicate delivery of settled work.
            self._queue.ack(message)
            return
        doc = self._repo.document_or_none(current.document_id)
        if doc is not None and current.version < doc.meta.version:
            # A newer version was uploaded before this one was indexed: skip the parse.
            self._repo.supersede(job_id)
            self._queue.ack(message)
            return
        job = self._repo.start(job_id)
        if job is None or doc is None:
            self._queue.ack(message)
            return
        span.set_attribute(ATTR_DOCUMENT_ID, job.document_id)
        kind = str(message.body.get("kind", ""))
        with _Heartbeat(self._queue, message, self._settings.visibility_timeout_s):
            try:
                data = self._blobs.get(doc.object_key)
                meta = dataclasses.replace(doc.meta, version=job.version)
                count = self._pipeline.index_bytes(meta, kind, data)
            except (DocumentSuperseded, DocumentDeleted) as exc:
                # Settled, not failed: a newer version or a delete won the race.
                logger.info("job %s skipped: %s", job_id, exc)
                self._repo.supersede(job_id)
                self._queue.ack(message)
                return
            except (InvalidArgument, NotFound) as exc:
                # Permanent: the file itself is bad or gone; retrying cannot help.
                logger.info("job %s failed: %s", job_id, exc)
                self._repo.fail(job_id, str(exc))
                self._queue.ack(message)
                return
        if not self._repo.finish(job_id, count):
            # The document was deleted while we indexed it: remove what we wrote.
            self._pipeline.store.delete_document(job.document_id)
            try:
                self._repo.delete_document(job.document_id)
            except NotFound:
                pass
        else:
            self._retire_versions_before(job.document_id, job.version)
        span.set_attribute(ATTR_CHUNK_COUNT, count)
        self._queue.ack(message)
        logger.info("job %s indexed %d chunks", job_id, count)

    def _retire_versions_before(self, document_id: str, version: int) -> None:
        """Delete the raw files of versions the committed one replaced."""
        for key in self._repo.retire_versions_before(document_id, version):
            try:
                self._blobs.delete(key)
            except Exception:  # noqa: BLE001 - an orphaned raw file harms no reader
                logger.warning("could not delete raw file %s", key, exc_info=True)

    def _retry_or_fail(self, job_id: str, message: QueueMessage, exc: Exception) -> None:
        reason = str(exc) if isinstance(exc, RagchatError) else type(exc).__name__
        if message.receive_count >= self._settings.max_attempts:
            logger.error("job %s gave up after %d attempts: %s", job_id,
                         message.receive_count, reason)
            self._repo.fail(job_id, f"gave up after {message.receive_count} attempts: {reason}")
            self._queue.ack(message)
            return
        # Leave the message: SQS makes it visible again after the visibility timeout.
        logger.warning("job %s attempt %d failed (%s); will retry", job_id,
                       message.receive_count, reason, exc_info=True)
        self._repo.requeue_after_error(job_id, f"retrying after: {reason}")
