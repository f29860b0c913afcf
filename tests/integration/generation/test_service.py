"""GenerationService over real gRPC (in-process, port 0) with the OpenAI-compatible
provider against the fake server: one request for both calls, the Delta/FinalAnswer
oneof, streamed numbers that the final answer never contradicts, and RewriteQuery."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import grpc
import pytest
from ragchat.common.v1 import common_pb2
from ragchat.generation.v1 import generation_pb2, generation_pb2_grpc

from services.common.errors import error_info
from services.common.grpc_client import open_channel
from services.common.grpc_server import start_server
from services.common.protomap import chunk_to_pb
from services.common.types import ScoredChunk
from services.generation import servicer
from services.generation.answering import Answerer
from services.generation.citations import renumber
from services.generation.providers.openai_chat import OpenAIChatProvider
from services.generation.rewrite import QueryRewriter
from tests.support.fake_openai import ChatRequest, FakeOpenAI

KEY = "sk-test-0123456789abcdef"
TEXTS = [
    "The Normans gave their name to Normandy, a region in France.",
    "Rollo, a Viking leader, agreed to a treaty with King Charles III in 911.",
    "In 1066 William, Duke of Normandy, won the Battle of Hastings.",
]
CONTEXT = [
    chunk_to_pb(ScoredChunk(f"c{n}", f"d{n}", f"T{n}", "s", text, 0, 1.0 - n / 10))
    for n, text in enumerate(TEXTS, start=1)
]


def reply(request: ChatRequest) -> str:
    last = request.messages[-1]["content"]
    if last.startswith("Question to rewrite:"):
        return "Who was the son of William the Conqueror?"
    return "William, Duke of Normandy [1] won in 1066 [3] [8]."


@pytest.fixture
async def stub() -> AsyncIterator[generation_pb2_grpc.GenerationServiceStub]:
    with FakeOpenAI(api_key=KEY, reply=reply) as fake:
        provider = OpenAIChatProvider("test-model", KEY, fake.base_url)
        running = await start_server("127.0.0.1:0", lambda s: servicer.register(
            s, Answerer(provider), QueryRewriter(provider), 64))
        channel = open_channel(f"127.0.0.1:{running.port}")
        yield generation_pb2_grpc.GenerationServiceStub(channel)
        await channel.close()
        await running.stop(0)


async def test_stream_numbers_map_onto_the_final_citations(
    stub: generation_pb2_grpc.GenerationServiceStub,
) -> None:
    request = generation_pb2.GenerateRequest(question="Who won at Hastings?", context=CONTEXT)
    parts = [part async for part in stub.GenerateStream(request)]
    kinds = [part.WhichOneof("event") for part in parts]
    assert kinds[-1] == "final" and set(kinds[:-1]) == {"delta"}
    streamed = "".join(part.delta.text for part in parts[:-1])
    final = parts[-1].final
    assert final.citations[0].document_id == "d3"  # the passage holding the answer
    assert renumber(streamed, dict(final.renumbered)) == final.answer
    for n, m in final.renumbered.items():  # every streamed [n] names the same passage
        assert final.citations[m - 1].chunk_id == CONTEXT[n - 1].chunk_id
    assert "[8]" in streamed and "8" not in re.sub(r"\d{4}", "", final.answer)
    whole = await stub.Generate(request)  # the same request message
    assert (whole.answer, list(whole.citations)) == (final.answer, list(final.citations))


async def test_rewrite_query_uses_the_llm_and_rejects_an_empty_question(
    stub: generation_pb2_grpc.GenerationServiceStub,
) -> None:
    history = [
        common_pb2.Turn(role=common_pb2.ROLE_USER, content="Who won at Hastings?"),
        common_pb2.Turn(role=common_pb2.ROLE_ASSISTANT, content="William [1]."),
    ]
    result = await stub.RewriteQuery(generation_pb2.RewriteQueryRequest(
        question="And who was his son?", history=history))
    assert result.query == "Who was the son of William the Conqueror?"
    assert result.rewritten and result.method == "llm"
    plain = await stub.RewriteQuery(generation_pb2.RewriteQueryRequest(question="Who was Rollo?"))
    assert (plain.query, plain.rewritten, plain.method) == ("Who was Rollo?", False, "none")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RewriteQuery(generation_pb2.RewriteQueryRequest(question=" "))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"question": " "}, "question"),
        ({"question": "Who won?", "max_tokens": -1}, "max_tokens"),
        ({"question": "Who won?", "history": [common_pb2.Turn(content="hi")]}, "history[0].role"),
    ],
)
async def test_a_bad_generate_request_names_its_field(
    stub: generation_pb2_grpc.GenerationServiceStub, request_fields: dict, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Generate(generation_pb2.GenerateRequest(**request_fields))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info, bad = error_info(caught.value.trailing_metadata())
    assert info is not None and info.domain == "ragchat.dev"
    assert bad is not None and [v.field for v in bad.field_violations] == [field]
