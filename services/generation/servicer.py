"""GenerationService: maps protobuf requests onto the answerer and the query rewriter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from opentelemetry import trace
from ragchat.generation.v1 import generation_pb2, generation_pb2_grpc

from services.common.protomap import chunk_from_pb, chunk_to_pb, turns_from_pb
from services.common.telemetry import ATTR_CITATION_COUNT, ATTR_REFUSED
from services.common.threads import iterate_in_thread
from services.common.types import Answer
from services.generation.answering import Answerer
from services.generation.rewrite import QueryRewriter


def _record(answer: Answer) -> None:
    span = trace.get_current_span()
    span.set_attribute(ATTR_REFUSED, answer.refused)
    span.set_attribute(ATTR_CITATION_COUNT, len(answer.citations))


def final_to_pb(answer: Answer) -> generation_pb2.FinalAnswer:
    """The last message of a stream."""
    return generation_pb2.FinalAnswer(
        answer=answer.text,
        citations=[chunk_to_pb(c) for c in answer.citations],
        refused=answer.refused,
        model=answer.model,
        renumbered=answer.renumbered,
    )


class GenerationServicer(generation_pb2_grpc.GenerationServiceServicer):
    def __init__(
        self, answerer: Answerer, rewriter: QueryRewriter, default_max_tokens: int
    ) -> None:
        self._answerer = answerer
        self._rewriter = rewriter
        self._default_max_tokens = default_max_tokens

    def _args(self, request: generation_pb2.GenerateRequest) -> tuple[object, ...]:
        return (
            request.question,
            [chunk_from_pb(c) for c in request.context],
            turns_from_pb(request.history, "history"),
            request.max_tokens or self._default_max_tokens,
        )

    async def Generate(
        self, request: generation_pb2.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.GenerateResponse:
        answer = await asyncio.to_thread(self._answerer.answer, *self._args(request))
        _record(answer)
        return generation_pb2.GenerateResponse(
            answer=answer.text,
            citations=[chunk_to_pb(c) for c in answer.citations],
            refused=answer.refused,
            model=answer.model,
        )

    async def GenerateStream(
        self, request: generation_pb2.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[generation_pb2.GenerateStreamResponse]:
        args = self._args(request)
        async for item in iterate_in_thread(lambda: self._answerer.stream(*args)):
            if isinstance(item, Answer):
                _record(item)
                yield generation_pb2.GenerateStreamResponse(final=final_to_pb(item))
            else:
                yield generation_pb2.GenerateStreamResponse(
                    delta=generation_pb2.Delta(text=str(item))
                )

    async def RewriteQuery(
        self, request: generation_pb2.RewriteQueryRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.RewriteQueryResponse:
        history = turns_from_pb(request.history, "history")
        result = await asyncio.to_thread(self._rewriter.rewrite, request.question, history)
        return generation_pb2.RewriteQueryResponse(
            query=result.query, rewritten=result.rewritten, method=result.method
        )


def register(
    server: grpc.aio.Server, answerer: Answerer, rewriter: QueryRewriter, max_tokens: int
) -> list[str]:
    generation_pb2_grpc.add_GenerationServiceServicer_to_server(
        GenerationServicer(answerer, rewriter, max_tokens), server
    )
    return [generation_pb2.DESCRIPTOR.services_by_name["GenerationService"].full_name]
