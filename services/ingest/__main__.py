"""python -m services.ingest: the ingest gRPC API and its SQS worker."""

from __future__ import annotations

import asyncio
import logging

from services.common.aws import s3_client, sqs_client
from services.common.components import embeddings_from, vector_store_from
from services.common.db import migrate, open_pool
from services.common.grpc_server import serve_forever
from services.common.runner import run_service
from services.ingest import servicer
from services.ingest.adapters import S3BlobStore, SqsJobQueue
from services.ingest.batching import EmbeddingBatcher
from services.ingest.chunking import TokenChunker
from services.ingest.config import DEFAULT_PORT, IngestSettings
from services.ingest.jobs import JobRepository
from services.ingest.pipeline import IndexingPipeline
from services.ingest.submission import Submissions
from services.ingest.worker import IndexWorker

logger = logging.getLogger(__name__)


async def _requeue_stale(
    repo: JobRepository, submissions: Submissions, after_s: float, stop: asyncio.Event
) -> None:
    """Re-send jobs whose queue message was lost, so no upload silently stalls."""
    while not stop.is_set():
        try:
            for job in await asyncio.to_thread(repo.stale_jobs, after_s):
                logger.warning("re-queueing stale job %s (%s)", job.job_id, job.status)
                await asyncio.to_thread(submissions.requeue, job.job_id)
        except Exception:  # noqa: BLE001 - the sweep is retried on the next tick
            logger.warning("stale-job sweep failed", exc_info=True)
        try:
            await asyncio.wait_for(stop.wait(), timeout=max(after_s / 4, 5))
        except TimeoutError:
            pass


async def _serve(settings: IngestSettings) -> None:
    await asyncio.to_thread(migrate, settings.database_url, settings.embedding_dim)
    pool = open_pool(settings.database_url, max_size=settings.db_pool_max)
    embeddings = await asyncio.to_thread(embeddings_from, settings)
    store = vector_store_from(settings, pool)
    chunker = TokenChunker.for_embeddings(
        embeddings, settings.chunk_tokens, settings.chunk_overlap_tokens
    )
    batcher = EmbeddingBatcher(embeddings, settings.embed_batch_size)
    pipeline = IndexingPipeline(embeddings, chunker, store, batcher, settings.embed_slice_size)
    blobs = S3BlobStore(s3_client(settings), settings.s3_bucket)
    queue = SqsJobQueue(sqs_client(settings), settings.sqs_queue_url)
    repo = JobRepository(pool)
    submissions = Submissions(repo, blobs, queue, store, settings.max_upload_bytes)
    worker = IndexWorker(repo, blobs, queue, pipeline, settings)

    background = []
    if settings.worker_enabled:
        background = [worker.run for _ in range(settings.worker_concurrency)]
        background.append(
            lambda stop: _requeue_stale(repo, submissions, settings.stale_job_after_s, stop)
        )

    async def close() -> None:
        await asyncio.to_thread(batcher.close)
        await asyncio.to_thread(pool.close)

    await serve_forever(
        settings,
        DEFAULT_PORT,
        lambda server: servicer.register(server, submissions, repo),
        close,
        background,
    )


def main() -> None:
    run_service("ingest", IngestSettings, _serve)


if __name__ == "__main__":
    main()
