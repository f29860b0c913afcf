"""The SQS-fed indexing worker (`python -m services.ingest.worker` runs it alone).

A message is deleted only after its chunks are committed, so a crashed worker
loses nothing (SQS redelivers) and duplicates nothing (replace_document swaps
a document's chunks atomically). The loop survives any per-message error, never
receives while a dependency is down (so outages do not use up delivery attempts),
and on shutdown hands an unfinished job back to the queue at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import threading
from collections.abc import Callable

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.common.errors import (
    DocumentDeleted,
    DocumentSuperseded,
    InvalidArgument,
    NotFound,
    RagchatError,
    Unavailable,
)
from services.common.runner import abandon_running_threads, pause
from services.common.telemetry import (
    ATTR_CHUNK_COUNT,
    ATTR_DOCUMENT_ID,
    ATTR_JOB_ID,
    extract_message_context,
)
from services.common.tenancy import tenant_scope
from services.ingest.adapters import BlobStore, JobQueue, QueueMessage
from services.ingest.config import IngestSettings
from services.ingest.jobs import JobRepository
from services.ingest.pipeline import IndexingPipeline
from services.ingest.reindex import TASK as REINDEX_TASK
from services.ingest.reindex import Reindexer, handle_reindex
from services.ingest.submission import message_tenant

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# After an outage-type failure the message comes back this soon, not after the
# whole visibility timeout.
RETRY_SOON_S = 5


class _Heartbeat:
    """Keeps a message invisible, and its job row fresh, while a document is indexed."""

    def __init__(
        self, queue: JobQueue, message: QueueMessage, timeout_s: int, touch: Callable[[], None]
    ) -> None:
        self._queue, self._message, self._timeout = queue, message, timeout_s
        self._touch = touch
        self._stop = threading.Event()
        # The caller's context: touch() acts for the job's tenant.
        self._thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self._run,), daemon=True
        )

    def _run(self) -> None:
        while not self._stop.wait(self._timeout / 3):
            try:
                self._queue.extend(self._message, self._timeout)
                self._touch()  # the stale-job sweep must not re-queue a running job
            except Exception:  # noqa: BLE001 - a missed heartbeat only risks a redelivery
                logger.warning("heartbeat failed", exc_info=True)

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
        ready: Callable[[], bool] = lambda: True,
        reindexer: Reindexer | None = None,
    ) -> None:
        self._repo, self._blobs, self._queue = repo, blobs, queue
        self._reindexer = reindexer
        self._pipeline = pipeline
        self._settings = settings
        self._ready = ready
        self._abandoned: set[str] = set()  # receipts of jobs handed back at shutdown

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set. Any error is logged, backed off, and survived."""
        backoff = 1.0
        while not stop.is_set():
            try:
                if not self._ready():
                    await pause(stop, 1.0)  # a dependency is down: take no message
                    continue
                messages = await asyncio.to_thread(
                    self._queue.receive, 1, self._settings.sqs_wait_s
                )
                for message in messages:
                    await self._handle(message, stop)
                backoff = 1.0
            except Exception:  # noqa: BLE001 - the loop must outlive any single failure
                logger.warning("worker loop error; retrying in %.0fs", backoff, exc_info=True)
                await pause(stop, backoff)
                backoff = min(backoff * 2, 30.0)

    async def _handle(self, message: QueueMessage, stop: asyncio.Event) -> None:
        """Process one message in a daemon thread; abandon it cleanly if shutdown cuts in."""
        done = asyncio.get_running_loop().create_future()

        def work() -> None:
            try:
                self.process(message)
            finally:
                try:
                    done.get_loop().call_soon_threadsafe(_resolve, done)
                except RuntimeError:
                    pass  # the loop closed: this job was abandoned at shutdown

        threading.Thread(target=work, name="index-job", daemon=True).start()
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([done, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not done.done():
            try:
                await asyncio.wait_for(asyncio.shield(done), self._settings.shutdown_grace_s)
            except TimeoutError:
                await asyncio.to_thread(self.abandon, message)
        stopping.cancel()

    def abandon(self, message: QueueMessage) -> None:
        """Hand an unfinished job back: visible again at once, and `queued`."""
        job_id = str(message.body.get("job_id", ""))
        logger.warning("shutting down mid-job; job %s goes back to the queue", job_id)
        abandon_running_threads()
        self._abandoned.add(message.receipt)
        try:
            self._queue.extend(message, 0)
            with tenant_scope(message_tenant(message.body)):
                self._repo.requeue_if_processing(job_id, "interrupted by a shutdown; re-queued")
        except Exception:  # noqa: BLE001 - redelivery after the visibility timeout still works
            logger.warning("could not hand job %s back cleanly", job_id, exc_info=True)

    def process(self, message: QueueMessage) -> None:
        """Index one queued job, as the tenant its message names; acknowledges the
        message when it is settled."""
        if message.body.get("task") == REINDEX_TASK:  # mlops.reindex: no job row
            beat = _Heartbeat(self._queue, message, self._settings.visibility_timeout_s,
                              lambda: None)
            handle_reindex(message, self._reindexer, self._queue, self._settings.max_attempts,
                           beat, RETRY_SOON_S)
            return
        job_id = str(message.body.get("job_id", ""))
        try:
            tenant = message_tenant(message.body)
        except InvalidArgument:
            job_id = ""
        if not job_id:
            logger.error("dropping a malformed queue message")
            self._queue.ack(message)
            return
        with tenant_scope(tenant):
            self._process_traced(job_id, message)

    def _process_traced(self, job_id: str, message: QueueMessage) -> None:
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
                if message.receipt in self._abandoned:
                    return  # handed back at shutdown; what broke is the shutdown itself
                self._settle_failure(job_id, message, exc)

    def _process(self, job_id: str, message: QueueMessage, span: trace.Span) -> None:
        current = self._repo.get_or_none(job_id)
        if current is None or current.status in ("indexed", "failed", "superseded"):
            # Deleted meanwhile, or a duplicate delivery of settled work.
            self._queue.ack(message)
            return
        doc = self._repo.document_or_none(current.document_id)
        if doc is not None and current.version < doc.meta.version:
            # A newer version was uploaded before this one was indexed: skip the parse.
            self._repo.supersede(job_id)
            self._queue.ack(message)
            return
        limit = self._settings.max_attempts
        if message.receive_count >= limit and current.status == "processing":
            # The previous delivery died mid-job (crash, out of memory, kill) every
            # time: give up now, before SQS moves the message to the dead-letter queue.
            self._give_up(job_id, message, "the worker stopped while indexing it")
            return
        job = self._repo.start(job_id)
        if job is None or doc is None:
            self._queue.ack(message)
            return
        span.set_attribute(ATTR_DOCUMENT_ID, job.document_id)
        kind = str(message.body.get("kind", ""))
        beat = _Heartbeat(
            self._queue, message, self._settings.visibility_timeout_s,
            lambda: self._repo.touch(job_id),
        )
        with beat:
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
            # The document (and with it the job row) was deleted while we indexed it:
            # remove what we wrote where nothing cascades (Chroma).
            self._pipeline.store.delete_document(job.document_id)
        else:
            self._retire_versions_before(job.document_id, job.version)
        span.set_attribute(ATTR_CHUNK_COUNT, count)
        self._queue.ack(message)
        logger.info("job %s indexed %d chunks", job_id, count)

    def _retire_versions_before(self, document_id: str, version: int) -> None:
        """Delete the raw files of versions the committed one replaced."""
        for key in self._repo.retire_versions_before(document_id, version):
            self._blobs.discard(key)

    def _settle_failure(self, job_id: str, message: QueueMessage, exc: Exception) -> None:
        """Retry or fail a job. Bookkeeping that fails too (an outage) only logs: the
        message stays in the queue and comes back."""
        reason = str(exc) if isinstance(exc, RagchatError) else type(exc).__name__
        try:
            if isinstance(exc, Unavailable):
                # An outage, not a bad document: come back soon, and do not give up on
                # it (outages do not count against the document).
                logger.warning("job %s: %s; retrying in %ds", job_id, reason, RETRY_SOON_S)
                self._queue.extend(message, RETRY_SOON_S)
                self._repo.requeue_after_error(job_id, f"retrying after: {reason}")
                return
            if message.receive_count >= self._settings.max_attempts:
                self._give_up(job_id, message, reason)
                return
            logger.warning("job %s attempt %d failed (%s); will retry", job_id,
                           message.receive_count, reason, exc_info=True)
            self._repo.requeue_after_error(job_id, f"retrying after: {reason}")
        except Exception:  # noqa: BLE001 - see docstring
            logger.warning("job %s: could not record the failure (%s); the message will be "
                           "redelivered", job_id, reason, exc_info=True)

    def _give_up(self, job_id: str, message: QueueMessage, reason: str) -> None:
        attempts = message.receive_count
        logger.error("job %s gave up after %d attempts: %s", job_id, attempts, reason)
        self._repo.fail(job_id, f"gave up after {attempts} attempts: {reason}")
        self._queue.ack(message)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


if __name__ == "__main__":
    from services.ingest.__main__ import main_worker

    main_worker()
