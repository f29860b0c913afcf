"""python -m services.retrieval: the search gRPC service."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial

from services.common.components import embeddings_from, vector_store_from
from services.common.db import postgres_probe, prepare_database
from services.common.embeddings import EmbeddingProvider
from services.common.generation_models import GenerationModels
from services.common.grpc_server import serve_forever
from services.common.runner import run_service
from services.common.vectorstore.pgvector import PgVectorStore
from services.retrieval import servicer
from services.retrieval.batching import BatchingEmbeddings
from services.retrieval.config import DEFAULT_PORT, RetrievalSettings
from services.retrieval.generations import ActiveEmbeddings, ActiveIndex
from services.retrieval.rerank import build_reranker
from services.retrieval.search import Retriever

Background = Callable[[asyncio.Event], Awaitable[None]]


async def _serve(settings: RetrievalSettings) -> None:
    pool = await asyncio.to_thread(prepare_database, settings)
    embeddings = await asyncio.to_thread(embeddings_from, settings)
    reranker = await asyncio.to_thread(
        build_reranker,
        settings.reranker,
        embeddings=embeddings,
        model_path=settings.reranker_model_path,
        device=settings.embedding_device,
    )
    store = vector_store_from(settings, pool)
    index: ActiveIndex | None = None
    served: EmbeddingProvider = embeddings
    tasks: dict[str, Background] = {}
    if isinstance(store, PgVectorStore):  # Chroma has one implicit generation
        index = await asyncio.to_thread(_active_index, settings, store, embeddings)
        served = ActiveEmbeddings(index, embeddings)
        tasks["index-generations"] = partial(index.follow, poll_s=settings.generation_poll_s)
    retriever = Retriever(
        BatchingEmbeddings(embeddings), store, settings.search_policy(), reranker, index
    )

    async def close() -> None:
        await asyncio.to_thread(pool.close)

    await serve_forever(
        settings,
        DEFAULT_PORT,
        lambda server: servicer.register(
            server, retriever, served, settings.search_workers()
        ),
        close,
        tasks,
        probes=[postgres_probe(pool, settings.db_connect_timeout_s)],
        notes=index.health_notes if index is not None else None,
    )


def _active_index(
    settings: RetrievalSettings, store: PgVectorStore, embeddings: EmbeddingProvider
) -> ActiveIndex:
    """Dense search following the active index generation, its model loaded now."""
    models = GenerationModels(embeddings, settings.embedding_device, settings.model_cache_dir,
                              settings.embedding_precision)
    index = ActiveIndex(store, models, BatchingEmbeddings)
    index.refresh()
    return index


def main() -> None:
    run_service("retrieval", RetrievalSettings, _serve)


if __name__ == "__main__":
    main()
