"""Versions, idempotent uploads and deletes racing the real worker (PostgreSQL, moto, MiniLM)."""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from psycopg_pool import ConnectionPool

from services.common.aws import s3_client, sqs_client
from services.common.embeddings import EmbeddingProvider
from services.common.errors import Conflict, NotFound
from services.common.tenancy import DEFAULT_TENANT, tenant_scope
from services.common.types import DocumentMeta, SearchFilter
from services.common.vectorstore.base import VectorStore
from services.common.vectorstore.chroma import ChromaVectorStore
from services.common.vectorstore.pgvector import PgVectorStore
from services.ingest.adapters import QueueMessage, S3BlobStore, SqsJobQueue
from services.ingest.chunking import TokenChunker
from services.ingest.config import IngestSettings
from services.ingest.jobs import JobRepository
from services.ingest.pipeline import IndexingPipeline
from services.ingest.submission import Submissions
from services.ingest.worker import IndexWorker

OLD = "\n\n".join(
    f"Section {i}: staff receive {20 + i} days of annual leave under the 2023 handbook."
    for i in range(12)
).encode()
NEW = "\n\n".join(
    f"Section {i}: staff receive {30 + i} days of holiday under the revised 2025 handbook."
    for i in range(12)
).encode()


class Hooked:
    """Wraps a real store; runs `hook` once just before the next write commits."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store
        self.hook: Callable[[], None] | None = None

    def replace_document(self, doc: DocumentMeta, chunks: Any,
                         vectors: np.ndarray | None = None) -> None:
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        self.store.replace_document(doc, chunks, vectors)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


class Ingest:
    """Submissions and the real IndexWorker over one bucket and queue."""

    def __init__(self, pool: ConnectionPool, embeddings: EmbeddingProvider,
                 aws: dict[str, str], store: VectorStore) -> None:
        settings = IngestSettings(**aws, chunk_tokens=40, chunk_overlap_tokens=8, sqs_wait_s=1)
        self.query = embeddings.embed_query("annual leave days")
        self.repo = JobRepository(pool)
        self.blobs = S3BlobStore(s3_client(settings), settings.s3_bucket)
        self.queue = SqsJobQueue(sqs_client(settings), settings.sqs_queue_url)
        self.store = Hooked(store)
        chunker = TokenChunker.for_embeddings(embeddings, 40, 8)
        pipeline = IndexingPipeline(embeddings, chunker, self.store)  # type: ignore[arg-type]
        self.submissions = Submissions(self.repo, self.blobs, self.queue, store,
                                       settings.max_upload_bytes)
        self.worker = IndexWorker(self.repo, self.blobs, self.queue, pipeline, settings)

    def receive(self) -> QueueMessage:
        for _ in range(5):
            messages = self.queue.receive(1, 1)
            if messages:
                return messages[0]
        raise AssertionError("no message arrived")

    def texts(self, document_id: str) -> list[str]:
        """Every chunk of the document, through a real (exact, filtered) search."""
        hits = self.store.search(self.query, 100, -1.0, SearchFilter(document_ids=(document_id,)))
        return [h.text for h in hits]

    def jobs(self) -> int:
        with self.repo.pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM jobs").fetchone()
        return int(row[0]) if row else 0


@pytest.fixture(params=["pgvector", "chroma"])
def ingest(request: pytest.FixtureRequest, clean_pool: ConnectionPool,
           embeddings: EmbeddingProvider, aws: dict[str, str], tmp_path: Path) -> Ingest:
    store: VectorStore = (PgVectorStore(clean_pool) if request.param == "pgvector"
                          else ChromaVectorStore(str(tmp_path / "chroma")))
    return Ingest(clean_pool, embeddings, aws, store)


@pytest.fixture
def pg_ingest(clean_pool: ConnectionPool, embeddings: EmbeddingProvider,
              aws: dict[str, str]) -> Ingest:
    return Ingest(clean_pool, embeddings, aws, PgVectorStore(clean_pool))


def test_a_new_version_replaces_the_old_one_without_a_gap(ingest: Ingest) -> None:
    first = ingest.submissions.accept("handbook.md", "", OLD, document_key="handbook")
    ingest.worker.process(ingest.receive())
    old_key = ingest.repo.document(first.document_id).object_key
    assert all("2023" in t for t in ingest.texts(first.document_id))

    seen: list[int] = []
    stop = threading.Event()

    def search_while_swapping() -> None:
        while not stop.is_set():
            seen.append(len(ingest.texts(first.document_id)))

    def let_searches_run() -> None:  # a few searches before the swap, more during it
        while len(seen) < 5:
            stop.wait(0.01)

    ingest.store.hook = let_searches_run
    # The searcher acts for the test's tenant too (a new thread starts outside any).
    searcher = threading.Thread(target=contextvars.copy_context().run,
                                args=(search_while_swapping,))
    searcher.start()
    try:
        second = ingest.submissions.accept("handbook-v2.md", "", NEW, document_key="handbook")
        ingest.worker.process(ingest.receive())
    finally:
        stop.set()
        searcher.join()

    assert (second.document_id, second.version) == (first.document_id, 2)
    assert len(seen) > 5 and 0 not in seen  # old chunks served until the new ones committed
    texts = ingest.texts(first.document_id)
    assert texts and all("2025" in t for t in texts)
    assert ingest.repo.document(first.document_id).meta.version == 2
    with pytest.raises(NotFound):
        ingest.blobs.get(old_key)  # the replaced version's raw file is gone
    history = [(v.version, v.status) for v in ingest.repo.versions(first.document_id)]
    assert history == [(2, "indexed"), (1, "indexed")]


def test_a_late_job_for_an_older_version_is_superseded(ingest: Ingest) -> None:
    first = ingest.submissions.accept("handbook.md", "", OLD, document_key="handbook")
    stale = ingest.receive()
    ingest.submissions.accept("handbook.md", "", NEW, document_key="handbook")
    ingest.worker.process(ingest.receive())
    ingest.worker.process(stale)  # delivered late, after version 2 was indexed
    job = ingest.repo.get(first.job_id)
    assert (job.status, job.error, job.attempts) == ("superseded", "superseded by version 2", 0)
    assert all("2025" in t for t in ingest.texts(first.document_id))
    assert ingest.queue.receive(1, 0) == []  # acknowledged, not retried


def test_a_newer_version_indexed_mid_write_is_never_overwritten(ingest: Ingest) -> None:
    first = ingest.submissions.accept("handbook.md", "", OLD, document_key="handbook")
    message = ingest.receive()

    def newer_version_lands() -> None:
        ingest.submissions.accept("handbook.md", "", NEW, document_key="handbook")
        ingest.worker.process(ingest.receive())

    ingest.store.hook = newer_version_lands  # after version 1's checks, before its write
    ingest.worker.process(message)
    assert ingest.repo.get(first.job_id).status == "superseded"
    texts = ingest.texts(first.document_id)
    assert texts and all("2025" in t for t in texts)
    assert [v.status for v in ingest.repo.versions(first.document_id)] == [
        "indexed", "superseded"]


def test_the_version_check_holds_inside_the_transaction(pg_ingest: Ingest) -> None:
    first = pg_ingest.submissions.accept("handbook.md", "", OLD, document_key="handbook")
    message = pg_ingest.receive()
    pg_ingest.store.hook = lambda: pg_ingest.submissions.accept(
        "handbook.md", "", NEW, document_key="handbook")
    pg_ingest.worker.process(message)  # version 2 uploaded (not indexed) mid-write
    assert pg_ingest.repo.get(first.job_id).status == "superseded"
    assert pg_ingest.store.count_chunks(first.document_id) == 0  # version 1 never committed
    pg_ingest.worker.process(pg_ingest.receive())
    assert all("2025" in t for t in pg_ingest.texts(first.document_id))


def test_same_key_same_content_adds_no_version(pg_ingest: Ingest) -> None:
    first = pg_ingest.submissions.accept("handbook.md", "", OLD, document_key="handbook")
    again = pg_ingest.submissions.accept("handbook.md", "", OLD, document_key="handbook")
    assert (again.job_id, again.document_id, again.version) == (
        first.job_id, first.document_id, 1)
    assert pg_ingest.jobs() == 1
    pg_ingest.receive()
    assert pg_ingest.queue.receive(1, 0) == []  # one message only


def test_retries_with_an_idempotency_key_create_one_document(pg_ingest: Ingest) -> None:
    first = pg_ingest.submissions.accept("notes.txt", "", OLD, ["hr"], request_id="req-1")
    retry = pg_ingest.submissions.accept("notes.txt", "", OLD, ["hr"], request_id="req-1")
    assert (retry.job_id, retry.document_id) == (first.job_id, first.document_id)
    assert len(pg_ingest.repo.list_documents(10)) == 1 and pg_ingest.jobs() == 1
    with pytest.raises(Conflict, match="req-1"):
        pg_ingest.submissions.accept("notes.txt", "", NEW, ["hr"], request_id="req-1")
    assert len(pg_ingest.repo.list_documents(10)) == 1 and pg_ingest.jobs() == 1


def test_concurrent_retries_with_one_key_create_one_document(pg_ingest: Ingest) -> None:
    results: list[Any] = []

    def upload() -> None:
        with tenant_scope(DEFAULT_TENANT):  # a new thread starts outside any tenant
            results.append(pg_ingest.submissions.accept("notes.txt", "", OLD, request_id="race"))

    threads = [threading.Thread(target=upload) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({(r.job_id, r.document_id) for r in results}) == 1 and len(results) == 4
    assert len(pg_ingest.repo.list_documents(10)) == 1 and pg_ingest.jobs() == 1


def test_a_delete_landing_mid_index_is_not_undone(
    ingest: Ingest, caplog: pytest.LogCaptureFixture
) -> None:
    first = ingest.submissions.accept("handbook.md", "", OLD, document_key="handbook")
    ingest.worker.process(ingest.receive())
    keys = [ingest.repo.document(first.document_id).object_key]
    ingest.submissions.accept("handbook.md", "", NEW, document_key="handbook")
    keys.append(ingest.repo.document(first.document_id).object_key)
    ingest.store.hook = lambda: ingest.submissions.delete(first.document_id)
    with caplog.at_level(logging.INFO):
        ingest.worker.process(ingest.receive())  # deleted while version 2 is being embedded
    assert ingest.store.count_chunks(first.document_id) == 0
    assert ingest.store.keyword_search("holiday handbook", 10) == []
    assert ingest.repo.document_or_none(first.document_id) is None
    assert ingest.jobs() == 0
    for key in keys:
        with pytest.raises(NotFound):
            ingest.blobs.get(key)
    assert ingest.queue.receive(1, 0) == []  # acknowledged: no retries
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_delete_removes_every_version_and_a_queued_job(pg_ingest: Ingest) -> None:
    first = pg_ingest.submissions.accept("handbook.md", "", OLD, document_key="handbook")
    old_key = pg_ingest.repo.document(first.document_id).object_key
    pg_ingest.submissions.accept("handbook.md", "", NEW, document_key="handbook")
    new_key = pg_ingest.repo.document(first.document_id).object_key
    pg_ingest.submissions.delete(first.document_id)
    for message in (pg_ingest.receive(), pg_ingest.receive()):
        pg_ingest.worker.process(message)  # late jobs of the deleted document
    for key in (old_key, new_key):
        with pytest.raises(NotFound):
            pg_ingest.blobs.get(key)
    assert pg_ingest.repo.list_documents(10) == []
    assert pg_ingest.store.count_chunks() == 0
