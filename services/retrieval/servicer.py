"""RetrievalService: maps protobuf requests onto the retriever."""

from __future__ import annotations

import asyncio

import grpc
from ragchat.retrieval.v1 import retrieval_pb2, retrieval_pb2_grpc

from services.common.protomap import chunk_to_pb, filter_from_pb
from services.retrieval.search import Retriever


class RetrievalServicer(retrieval_pb2_grpc.RetrievalServiceServicer):
    def __init__(self, retriever: Retriever) -> None:
        self._retriever = retriever

    async def Search(
        self, request: retrieval_pb2.SearchRequest, context: grpc.aio.ServicerContext
    ) -> retrieval_pb2.SearchResponse:
        flt = filter_from_pb(request.filter) if request.HasField("filter") else None
        chunks = await asyncio.to_thread(
            self._retriever.search, request.query, request.top_k, request.min_score, flt
        )
        return retrieval_pb2.SearchResponse(chunks=[chunk_to_pb(c) for c in chunks])


def register(server: grpc.aio.Server, retriever: Retriever) -> list[str]:
    retrieval_pb2_grpc.add_RetrievalServiceServicer_to_server(
        RetrievalServicer(retriever), server
    )
    return [retrieval_pb2.DESCRIPTOR.services_by_name["RetrievalService"].full_name]
