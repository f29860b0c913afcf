"""RetrievalService: maps protobuf requests onto the retriever."""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import grpc
from ragchat.retrieval.v1 import retrieval_pb2, retrieval_pb2_grpc

from services.common.embeddings import EmbeddingProvider
from services.common.errors import InvalidArgument, Unsupported
from services.common.protomap import (
    RERANKER_TO_PB,
    SEARCH_MODE_FROM_PB,
    SEARCH_MODE_TO_PB,
    chunk_to_pb,
    filter_from_pb,
)
from services.retrieval.search import Retriever

# The unspecified mode leaves the choice to the retriever's policy.
_MODE_FROM_PB = {retrieval_pb2.SEARCH_MODE_UNSPECIFIED: "", **SEARCH_MODE_FROM_PB}
MAX_EMBED_TEXTS = 256


class RetrievalServicer(retrieval_pb2_grpc.RetrievalServiceServicer):
    def __init__(
        self, retriever: Retriever, embeddings: EmbeddingProvider | None = None, workers: int = 4
    ) -> None:
        self._retriever = retriever
        self._embeddings = embeddings
        # Searches block (model, database); they run here, off the event loop. Each
        # hybrid search holds two database connections, so `workers` stays within the pool.
        self._executor = ThreadPoolExecutor(max(1, workers), thread_name_prefix="search")

    async def Search(
        self, request: retrieval_pb2.SearchRequest, context: grpc.aio.ServicerContext
    ) -> retrieval_pb2.SearchResponse:
        if request.mode not in _MODE_FROM_PB:
            raise InvalidArgument(f"unknown search mode {request.mode}", field="mode")
        flt = filter_from_pb(request.filter) if request.HasField("filter") else None
        search = partial(
            self._retriever.search,
            request.query,
            request.top_k,
            request.min_score if request.HasField("min_score") else None,
            flt,
            _MODE_FROM_PB[request.mode],
            request.rerank if request.HasField("rerank") else None,
        )
        context = contextvars.copy_context()  # spans in the worker keep their parent
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._executor, context.run, search)
        return retrieval_pb2.SearchResponse(
            chunks=[chunk_to_pb(c) for c in result.chunks],
            mode=SEARCH_MODE_TO_PB[result.mode],
            reranker=RERANKER_TO_PB[result.reranker],
        )

    async def Embed(
        self, request: retrieval_pb2.EmbedRequest, context: grpc.aio.ServicerContext
    ) -> retrieval_pb2.EmbedResponse:
        if self._embeddings is None:
            raise Unsupported(
                "this retrieval service was started without an embedding model",
                reason="EMBEDDING_MODEL_MISSING",
            )
        texts = list(request.texts)
        if not 1 <= len(texts) <= MAX_EMBED_TEXTS:
            raise InvalidArgument(
                f"texts must hold 1 to {MAX_EMBED_TEXTS} items, got {len(texts)}", field="texts"
            )
        if any(not text.strip() for text in texts):
            raise InvalidArgument("texts must not be empty", field="texts")
        embeddings = self._embeddings
        vectors, tokens = await asyncio.to_thread(_embed, embeddings, texts)
        return retrieval_pb2.EmbedResponse(
            embeddings=[retrieval_pb2.Embedding(values=v.tolist()) for v in vectors],
            model=embeddings.model_name,
            dimensions=embeddings.dimension,
            total_tokens=tokens,
        )


def _embed(embeddings: EmbeddingProvider, texts: list[str]) -> tuple[Any, int]:
    # The same call the indexer makes, so the vectors equal the stored ones.
    vectors = embeddings.embed_documents(texts)
    return vectors, sum(embeddings.count_tokens(t) for t in texts)


def register(
    server: grpc.aio.Server,
    retriever: Retriever,
    embeddings: EmbeddingProvider | None = None,
    workers: int = 4,
) -> list[str]:
    """Serve Search (and Embed, when given the embedding model) on `server`."""
    retrieval_pb2_grpc.add_RetrievalServiceServicer_to_server(
        RetrievalServicer(retriever, embeddings, workers), server
    )
    return [retrieval_pb2.DESCRIPTOR.services_by_name["RetrievalService"].full_name]
