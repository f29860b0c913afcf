"""Jobs in flight share the embedding thread: a tiny upload never waits for a big one."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from psycopg_pool import ConnectionPool

from services.common.aws import s3_client, sqs_client
from services.common.embeddings import EmbeddingProvider
from services.common.vectorstore.pgvector import PgVectorStore
from services.ingest.adapters import QueueMessage, S3BlobStore, SqsJobQueue
from services.ingest.batching import EmbeddingBatcher
from services.ingest.chunking import TokenChunker
from services.ingest.config import IngestSettings
from services.ingest.jobs import JobRepository
from services.ingest.pipeline import IndexingPipeline
from services.ingest.submission import Submissions
from services.ingest.worker import IndexWorker

BIG = "\n\n".join(
    f"Section {i}. The lighthouse keeper logged {i * 7} ships passing the northern reef, "
    f"and the fog lasted {i % 11} hours on day {i}." for i in range(600)
)
TINY = "The harbour master's phone number is 555-0100."


def test_a_tiny_upload_is_indexed_while_a_large_one_is_still_indexing(
    clean_pool: ConnectionPool, embeddings: EmbeddingProvider, aws: dict[str, str]
) -> None:
    settings = IngestSettings(**aws, sqs_wait_s=1)
    batcher = EmbeddingBatcher(embeddings, batch_size=16)
    store = PgVectorStore(clean_pool)
    pipeline = IndexingPipeline(embeddings, TokenChunker.for_embeddings(embeddings, 40, 8),
                                store, batcher=batcher, slice_size=32)
    repo = JobRepository(clean_pool)
    blobs = S3BlobStore(s3_client(settings), settings.s3_bucket)
    queue = SqsJobQueue(sqs_client(settings), settings.sqs_queue_url)
    submissions = Submissions(repo, blobs, queue, store, settings.max_upload_bytes)
    worker = IndexWorker(repo, blobs, queue, pipeline, settings)
    big_job, big_doc = submissions.submit("big.txt", "", BIG.encode())
    tiny_job, tiny_doc = submissions.submit("tiny.txt", "", TINY.encode())
    messages: dict[str, QueueMessage] = {}
    while len(messages) < 2:
        messages.update((str(m.body["job_id"]), m) for m in queue.receive(1, 1))

    with ThreadPoolExecutor(2) as pool:
        big = pool.submit(worker.process, messages[big_job])
        while repo.get(big_job).status != "processing":
            time.sleep(0.01)
        pool.submit(worker.process, messages[tiny_job]).result(timeout=120)
        assert repo.get(tiny_job).status == "indexed"
        assert repo.get(big_job).status == "processing"  # the big one is still embedding
        hits = store.search(embeddings.embed_query("harbour master phone"), 1)
        assert [h.document_id for h in hits] == [tiny_doc]
        big.result(timeout=600)
    batcher.close()
    big_count = repo.get(big_job).chunk_count
    assert repo.get(big_job).status == "indexed"
    assert big_count == store.count_chunks(big_doc) > 300
