"""RetrievalService: maps protobuf requests onto the retriever."""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import grpc
from ragchat.retrieval.v1 import retrieval_pb2, retrieval_pb2_grpc

from services.common.errors import InvalidArgument
from services.common.protomap import (
    SEARCH_MODE_FROM_PB,
    SEARCH_MODE_TO_PB,
    chunk_to_pb,
    filter_from_pb,
)
from services.retrieval.search import Retriever

# The unspecified mode leaves the choice to the retriever's policy.
_MODE_FROM_PB = {retrieval_pb2.SEARCH_MODE_UNSPECIFIED: "", **SEARCH_MODE_FROM_PB}


class RetrievalServicer(retrieval_pb2_grpc.RetrievalServiceServicer):
    def __init__(self, retriever: Retriever, workers: int = 4) -> None:
        self._retriever = retriever
        # Searches block (model, database); they run here, off the event loop. Each
        # hybrid search holds two database connections, so `workers` stays within the pool.
        self._executor = ThreadPoolExecutor(max(1, workers), thread_name_prefix="search")

    async def Search(
        self, request: retrieval_pb2.SearchRequest, context: grpc.aio.ServicerContext
    ) -> retrieval_pb2.SearchResponse:
        if request.mode not in _MODE_FROM_PB:
            raise InvalidArgument(f"unknown search mode {request.mode}")
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
            reranker=result.reranker,
        )


def register(server: grpc.aio.Server, retriever: Retriever, workers: int = 4) -> list[str]:
    retrieval_pb2_grpc.add_RetrievalServiceServicer_to_server(
        RetrievalServicer(retriever, workers), server
    )
    return [retrieval_pb2.DESCRIPTOR.services_by_name["RetrievalService"].full_name]
