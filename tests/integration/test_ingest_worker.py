"""Submission and the SQS worker against real PostgreSQL, moto S3/SQS and MiniLM."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from services.common.aws import s3_client, sqs_client
from services.common.embeddings import EmbeddingProvider
from services.common.errors import InvalidArgument, NotFound, TooLarge, Unavailable, Unsupported
from services.common.types import ChunkRecord, DocumentMeta
from services.common.vectorstore.pgvector import PgVectorStore
from services.ingest.adapters import QueueMessage, S3BlobStore, SqsJobQueue
from services.ingest.chunking import TokenChunker
from services.ingest.config import IngestSettings
from services.ingest.jobs import JobRepository
from services.ingest.pipeline import IndexingPipeline
from services.ingest.submission import Submissions
from services.ingest.worker import IndexWorker

PARAGRAPHS = "\n\n".join(
    f"Paragraph {i}: the harbour of Port Aven handled {i * 100} tonnes of fish in year {1900 + i}."
    for i in range(40)
)


class Flaky(PgVectorStore):
    """The real store, failing its first `failures` writes like a dying database."""

    def __init__(self, pool: ConnectionPool, failures: int) -> None:
        super().__init__(pool)
        self.failures = failures

    def replace_document(self, doc: DocumentMeta, chunks: Any, vectors: Any = None) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database went away")
        super().replace_document(doc, chunks, vectors)


class Harness:
    def __init__(self, pool: ConnectionPool, embeddings: EmbeddingProvider, aws: dict[str, str],
                 store: PgVectorStore) -> None:
        self.settings = IngestSettings(
            **aws, chunk_tokens=40, chunk_overlap_tokens=8, max_upload_mb=0.5, max_attempts=3,
            sqs_wait_s=1,
        )
        self.repo = JobRepository(pool)
        self.blobs = S3BlobStore(s3_client(self.settings), self.settings.s3_bucket)
        self.queue = SqsJobQueue(sqs_client(self.settings), self.settings.sqs_queue_url)
        self.store = store
        chunker = TokenChunker.for_embeddings(embeddings, 40, 8)
        pipeline = IndexingPipeline(embeddings, chunker, store)
        self.submissions = Submissions(
            self.repo, self.blobs, self.queue, store, self.settings.max_upload_bytes
        )
        self.worker = IndexWorker(self.repo, self.blobs, self.queue, pipeline, self.settings)

    def receive(self) -> QueueMessage:
        for _ in range(5):
            messages = self.queue.receive(1, 1)
            if messages:
                return messages[0]
        raise AssertionError("no message arrived")


@pytest.fixture
def harness(clean_pool: ConnectionPool, embeddings: EmbeddingProvider,
            aws: dict[str, str]) -> Iterator[Harness]:
    yield Harness(clean_pool, embeddings, aws, PgVectorStore(clean_pool))


def test_a_submitted_document_is_indexed_and_its_message_deleted(harness: Harness) -> None:
    job_id, doc_id = harness.submissions.submit("harbour.md", "", PARAGRAPHS.encode(), ["fish"])
    assert harness.repo.get(job_id).status == "queued"
    message = harness.receive()
    harness.worker.process(message)
    job = harness.repo.get(job_id)
    assert job.status == "indexed"
    assert job.chunk_count == harness.store.count_chunks(doc_id) > 3
    assert harness.queue.receive(1, 1) == []  # acknowledged


def test_redelivery_after_commit_does_not_duplicate_chunks(harness: Harness) -> None:
    job_id, doc_id = harness.submissions.submit("harbour.txt", "text/plain", PARAGRAPHS.encode())
    message = harness.receive()
    harness.worker.process(message)
    count = harness.store.count_chunks(doc_id)
    # A worker that crashed between commit and delete: SQS delivers the same job again.
    harness.repo.requeue_after_error(job_id, "simulated crash")
    harness.worker.process(message)
    assert harness.store.count_chunks(doc_id) == count
    assert harness.repo.get(job_id).status == "indexed"


def test_a_failed_attempt_is_retried_from_the_queue(clean_pool: ConnectionPool,
                                                    embeddings: EmbeddingProvider,
                                                    aws: dict[str, str]) -> None:
    harness = Harness(clean_pool, embeddings, aws, Flaky(clean_pool, failures=1))
    job_id, doc_id = harness.submissions.submit("harbour.txt", "", PARAGRAPHS.encode())
    first = harness.receive()
    harness.worker.process(first)
    job = harness.repo.get(job_id)
    assert job.status == "queued" and "database went away" not in job.error  # no internals
    assert harness.store.count_chunks(doc_id) == 0
    harness.queue.extend(first, 0)  # the visibility timeout runs out
    harness.worker.process(harness.receive())
    assert harness.repo.get(job_id).status == "indexed"
    assert harness.repo.get(job_id).attempts == 2


def test_a_job_that_keeps_failing_ends_failed(clean_pool: ConnectionPool,
                                              embeddings: EmbeddingProvider,
                                              aws: dict[str, str]) -> None:
    harness = Harness(clean_pool, embeddings, aws, Flaky(clean_pool, failures=99))
    job_id, _ = harness.submissions.submit("harbour.txt", "", PARAGRAPHS.encode())
    for attempt in range(1, harness.settings.max_attempts + 1):
        message = harness.receive()
        harness.worker.process(message)
        if attempt < harness.settings.max_attempts:
            harness.queue.extend(message, 0)  # the visibility timeout runs out
    job = harness.repo.get(job_id)
    assert job.status == "failed"
    assert "gave up after 3 attempts" in job.error
    assert harness.queue.receive(1, 1) == []


def test_an_unparseable_pdf_fails_without_retry(harness: Harness) -> None:
    job_id, _ = harness.submissions.submit("bad.pdf", "application/pdf", b"%PDF-1.4 garbage")
    harness.worker.process(harness.receive())
    job = harness.repo.get(job_id)
    assert job.status == "failed"
    assert "PDF" in job.error
    assert harness.queue.receive(1, 1) == []


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("big.txt", b"x" * (600 * 1024), TooLarge),
        ("tool.exe", b"MZ", Unsupported),
        ("empty.txt", b"", InvalidArgument),
    ],
)
def test_bad_uploads_store_nothing(harness: Harness, name: str, data: bytes,
                                   error: type[Exception]) -> None:
    with pytest.raises(error):
        harness.submissions.submit(name, "", data)
    assert harness.repo.list_documents(10, 0) == []
    assert harness.queue.receive(1, 0) == []


def test_delete_removes_chunks_rows_and_raw_file(harness: Harness) -> None:
    job_id, doc_id = harness.submissions.submit("harbour.txt", "", PARAGRAPHS.encode())
    harness.worker.process(harness.receive())
    key = harness.repo.document(doc_id).object_key
    harness.submissions.delete(doc_id)
    assert harness.store.count_chunks(doc_id) == 0
    with pytest.raises(NotFound):
        harness.repo.get(job_id)
    with pytest.raises(NotFound):
        harness.blobs.get(key)
    with pytest.raises(NotFound):
        harness.submissions.delete(doc_id)


def test_a_message_for_a_deleted_document_is_dropped(harness: Harness) -> None:
    _, doc_id = harness.submissions.submit("harbour.txt", "", PARAGRAPHS.encode())
    message = harness.receive()
    harness.submissions.delete(doc_id)
    harness.worker.process(message)
    assert harness.store.count_chunks(doc_id) == 0
    assert harness.repo.list_documents(10, 0) == []


def test_stale_jobs_are_found_for_requeue(harness: Harness) -> None:
    job_id, _ = harness.submissions.submit("harbour.txt", "", PARAGRAPHS.encode())
    harness.receive()  # the message is "lost": received, never processed
    assert [j.job_id for j in harness.repo.stale_jobs(0)] == [job_id]
    harness.submissions.requeue(job_id)
    harness.worker.process(harness.receive())
    assert harness.repo.get(job_id).status == "indexed"


def test_chunk_ids_are_stable_per_document(harness: Harness) -> None:
    pipeline = harness.worker._pipeline
    chunks = pipeline.chunk("doc1", PARAGRAPHS)
    assert [c.chunk_id for c in chunks[:2]] == ["doc1:0", "doc1:1"]
    assert all(isinstance(c, ChunkRecord) for c in chunks)


def test_a_job_whose_worker_keeps_dying_fails_before_the_dead_letter_queue(
    harness: Harness,
) -> None:
    """A document that kills the worker on every delivery never finishes bookkeeping;
    the last delivery (by SQS receive count) marks it failed instead of retrying."""
    job_id, _ = harness.submissions.submit("crash.txt", "", PARAGRAPHS.encode())
    for _ in range(harness.settings.max_attempts - 1):
        message = harness.receive()
        harness.repo.start(job_id)  # the worker started it, then died without a trace
        harness.queue.extend(message, 0)
    last = harness.receive()
    assert last.receive_count == harness.settings.max_attempts
    harness.worker.process(last)
    job = harness.repo.get(job_id)
    assert job.status == "failed"
    assert "worker stopped while indexing" in job.error
    assert harness.queue.receive(1, 1) == []  # acknowledged: nothing reaches the DLQ


def test_dead_letters_mark_their_job_failed_and_redrive_requeues_it(
    harness: Harness, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from services.ingest import redrive
    from services.ingest.maintenance import settle_dead_letter

    job_id, _ = harness.submissions.submit("dead.txt", "", PARAGRAPHS.encode())
    message = harness.receive()
    harness.queue.ack(message)
    dlq_url = aws["sqs_queue_url"] + "-dlq"
    dlq = SqsJobQueue(sqs_client(harness.settings), dlq_url)
    dlq.send(message.body)  # what SQS does after maxReceiveCount deliveries
    for dead in dlq.receive(10, 1):
        settle_dead_letter(harness.repo, dlq, dead)
    job = harness.repo.get(job_id)
    assert job.status == "failed" and "dead-lettered" in job.error
    assert dlq.receive(10, 1) == []

    for key, value in aws.items():
        monkeypatch.setenv(f"RAGCHAT_{key.upper()}", value)
    monkeypatch.setenv("RAGCHAT_DATABASE_URL", harness.repo._pool.conninfo)  # noqa: SLF001
    assert redrive.main(["--list"]) == 0
    assert job_id in capsys.readouterr().out
    assert redrive.main([job_id]) == 0
    assert harness.repo.get(job_id).status == "queued"
    harness.worker.process(harness.receive())
    assert harness.repo.get(job_id).status == "indexed"
    assert redrive.main(["no-such-job"]) == 1


def test_the_heartbeat_keeps_a_running_job_out_of_the_stale_sweep(harness: Harness) -> None:
    job_id, _ = harness.submissions.submit("slow.txt", "", PARAGRAPHS.encode())
    with harness.repo._pool.connection() as conn:  # noqa: SLF001
        conn.execute("UPDATE jobs SET updated_at = now() - interval '1 hour'")
    assert [j.job_id for j in harness.repo.stale_jobs(600)] == [job_id]
    from services.ingest.worker import _Heartbeat

    message = harness.receive()
    with _Heartbeat(harness.queue, message, 10, lambda: harness.repo.touch(job_id)):
        time.sleep(4)  # one beat (timeout / 3)
    assert harness.repo.stale_jobs(600) == []


def test_a_missing_bucket_or_queue_shows_as_unhealthy_and_uploads_fail_fast(
    harness: Harness, aws: dict[str, str]
) -> None:
    """Services create no AWS resource: a missing one is a failed health probe."""
    missing_bucket = S3BlobStore(s3_client(harness.settings), aws["s3_bucket"] + "-gone")
    missing_queue = SqsJobQueue(sqs_client(harness.settings), aws["sqs_queue_url"] + "-gone")
    for probe in (missing_bucket.check, missing_queue.check):
        with pytest.raises(Exception):  # noqa: B017 - botocore's not-found error
            probe()
    assert not missing_bucket.healthy and not missing_queue.healthy
    with pytest.raises(Unavailable):
        missing_bucket.put("documents/x/y.txt", b"x", "text/plain")
    with pytest.raises(Unavailable):
        missing_queue.send({"job_id": "x"})
    harness.blobs.check()
    harness.queue.check()
    assert harness.blobs.healthy and harness.queue.healthy
