"""python -m services.retrieval: the search gRPC service."""

from __future__ import annotations

import asyncio

from services.common.components import embeddings_from, vector_store_from
from services.common.db import postgres_probe, prepare_database
from services.common.grpc_server import serve_forever
from services.common.runner import run_service
from services.retrieval import servicer
from services.retrieval.batching import BatchingEmbeddings
from services.retrieval.config import DEFAULT_PORT, RetrievalSettings
from services.retrieval.rerank import build_reranker
from services.retrieval.search import Retriever


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
    retriever = Retriever(
        BatchingEmbeddings(embeddings), vector_store_from(settings, pool),
        settings.search_policy(), reranker,
    )

    async def close() -> None:
        await asyncio.to_thread(pool.close)

    await serve_forever(
        settings,
        DEFAULT_PORT,
        lambda server: servicer.register(
            server, retriever, embeddings, settings.search_workers()
        ),
        close,
        probes=[postgres_probe(pool, settings.db_connect_timeout_s)],
    )


def main() -> None:
    run_service("retrieval", RetrievalSettings, _serve)


if __name__ == "__main__":
    main()
