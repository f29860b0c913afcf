"""RetrievalService: maps protobuf requests onto the retriever."""

from __future__ import annotations

import asyncio

import grpc
from ragchat.retrieval.v1 import retrieval_pb2, retrieval_pb2_grpc

from services.common.errors import InvalidArgument
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


class RetrievalServicer(retrieval_pb2_grpc.RetrievalServiceServicer):
    def __init__(self, retriever: Retriever) -> None:
        self._retriever = retriever

    async def Search(
        self, request: retrieval_pb2.SearchRequest, context: grpc.aio.ServicerContext
    ) -> retrieval_pb2.SearchResponse:
        if request.mode not in _MODE_FROM_PB:
            raise InvalidArgument(f"unknown search mode {request.mode}", field="mode")
        flt = filter_from_pb(request.filter) if request.HasField("filter") else None
        result = await asyncio.to_thread(
            self._retriever.search,
            request.query,
            request.top_k,
            request.min_score if request.HasField("min_score") else None,
            flt,
            _MODE_FROM_PB[request.mode],
            request.rerank if request.HasField("rerank") else None,
        )
        return retrieval_pb2.SearchResponse(
            chunks=[chunk_to_pb(c) for c in result.chunks],
            mode=SEARCH_MODE_TO_PB[result.mode],
            reranker=RERANKER_TO_PB[result.reranker],
        )


def register(server: grpc.aio.Server, retriever: Retriever) -> list[str]:
    retrieval_pb2_grpc.add_RetrievalServiceServicer_to_server(
        RetrievalServicer(retriever), server
    )
    return [retrieval_pb2.DESCRIPTOR.services_by_name["RetrievalService"].full_name]
