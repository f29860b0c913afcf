"""python -m services.ingest: the ingest gRPC API (and, unless disabled, its worker).

`python -m services.ingest.worker` runs the SQS worker alone, serving only gRPC
health; in ECS the API and the worker are separate services, scaled on their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc

from services.common.aws import s3_client, sqs_client
from services.common.components import embeddings_from, vector_store_from
from services.common.db import Pool, postgres_probe, prepare_database
from services.common.generation_models import GenerationModels
from services.common.grpc_server import serve_forever
from services.common.health import Probe
from services.common.runner import run_service
from services.common.vectorstore.base import VectorStore
from services.common.vectorstore.pgvector import PgVectorStore
from services.ingest import servicer
from services.ingest.adapters import S3BlobStore, SqsJobQueue
from services.ingest.batching import EmbeddingBatcher
from services.ingest.chunking import TokenChunker
from services.ingest.config import DEFAULT_PORT, WORKER_PORT, IngestSettings
from services.ingest.jobs import JobRepository
from services.ingest.maintenance import consume_dead_letters, requeue_stale
from services.ingest.pipeline import IndexingPipeline
from services.ingest.reindex import Reindexer
from services.ingest.submission import Submissions
from services.ingest.worker import IndexWorker

logger = logging.getLogger(__name__)
Background = Callable[[asyncio.Event], Awaitable[None]]


@dataclass
class Parts:
    pool: Pool
    blobs: S3BlobStore
    queue: SqsJobQueue
    repo: JobRepository
    submissions: Submissions
    store: VectorStore
    probes: list[Probe]
    batcher: EmbeddingBatcher | None = None

    def ready(self) -> bool:
        return self.pool.healthy and self.blobs.healthy and self.queue.healthy

    async def close(self) -> None:
        if self.batcher is not None:
            try:  # finish queued embeddings briefly; an abandoned job's are not waited for
                await asyncio.wait_for(asyncio.to_thread(self.batcher.close), 5)
            except TimeoutError:
                logger.warning("embedding batcher still busy at shutdown")
        await asyncio.to_thread(self.pool.close)


def _parts(settings: IngestSettings) -> Parts:
    pool = prepare_database(settings)
    blobs = S3BlobStore(s3_client(settings), settings.s3_bucket)
    queue = SqsJobQueue(sqs_client(settings), settings.sqs_queue_url)
    repo = JobRepository(pool)
    store = vector_store_from(settings, pool)
    probes = [
        postgres_probe(pool, settings.db_connect_timeout_s),
        Probe("s3", blobs.check),
        Probe("sqs", queue.check),
    ]
    submissions = Submissions(repo, blobs, queue, store, settings.max_upload_bytes)
    return Parts(pool, blobs, queue, repo, submissions, store, probes)


def _worker_tasks(settings: IngestSettings, parts: Parts) -> dict[str, Background]:
    embeddings = embeddings_from(settings)
    chunker = TokenChunker.for_embeddings(
        embeddings, settings.chunk_tokens, settings.chunk_overlap_tokens
    )
    settings.apply_switch_interval()
    parts.batcher = EmbeddingBatcher(embeddings, settings.embed_batch_size)
    # Each index generation's model, loaded once: uploads fill every live generation.
    models = GenerationModels(embeddings, settings.embedding_device, settings.model_cache_dir,
                              settings.embedding_precision)
    pipeline = IndexingPipeline(
        embeddings, chunker, parts.store, limits=settings.parse_limits,
        batcher=parts.batcher, slice_size=settings.embed_slice_size, models=models,
    )
    reindexer = (Reindexer(parts.pool, models, settings.embed_slice_size)
                 if isinstance(parts.store, PgVectorStore) else None)
    worker = IndexWorker(
        parts.repo, parts.blobs, parts.queue, pipeline, settings, ready=parts.ready,
        reindexer=reindexer,
    )
    tasks: dict[str, Background] = {
        f"worker-{i}": worker.run for i in range(settings.worker_concurrency)
    }
    tasks["stale-sweep"] = lambda stop: requeue_stale(
        parts.repo, parts.submissions, settings.stale_job_after_s, stop
    )
    if settings.sqs_dlq_url:
        dlq = SqsJobQueue(sqs_client(settings), settings.sqs_dlq_url)
        tasks["dead-letters"] = lambda stop: consume_dead_letters(
            parts.repo, dlq, settings.sqs_wait_s, stop
        )
    return tasks


async def _serve(settings: IngestSettings) -> None:
    parts = await asyncio.to_thread(_parts, settings)
    tasks = await asyncio.to_thread(_worker_tasks, settings, parts) if (
        settings.worker_enabled
    ) else {}
    await serve_forever(
        settings,
        DEFAULT_PORT,
        lambda server: servicer.register(server, parts.submissions, parts.repo),
        parts.close,
        tasks,
        parts.probes,
    )


async def _serve_worker(settings: IngestSettings) -> None:
    parts = await asyncio.to_thread(_parts, settings)
    tasks = await asyncio.to_thread(_worker_tasks, settings, parts)
    await serve_forever(settings, WORKER_PORT, _no_services, parts.close, tasks, parts.probes)


def _no_services(server: grpc.aio.Server) -> list[str]:
    return []  # the worker process serves health (and reflection) only


def main() -> None:
    run_service("ingest", IngestSettings, _serve)


def main_worker() -> None:
    run_service("ingest-worker", IngestSettings, _serve_worker)


if __name__ == "__main__":
    main()
