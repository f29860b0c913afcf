"""RetrievalService over real gRPC (in-process, port 0): modes, presence fields, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_status import rpc_status
from ragchat.common.v1 import common_pb2
from ragchat.retrieval.v1 import retrieval_pb2, retrieval_pb2_grpc

from services.common.embeddings import EmbeddingProvider
from services.common.errors import ERROR_DOMAIN, error_info
from services.common.grpc_client import open_channel
from services.common.grpc_server import start_server
from services.common.vectorstore.base import VectorStore
from services.retrieval import servicer
from services.retrieval.search import Retriever, SearchPolicy


@pytest.fixture
async def stub(
    embeddings: EmbeddingProvider, corpus_store: VectorStore
) -> AsyncIterator[retrieval_pb2_grpc.RetrievalServiceStub]:
    retriever = Retriever(embeddings, corpus_store, SearchPolicy(default_mode="hybrid"))
    running = await start_server("127.0.0.1:0", lambda s: servicer.register(s, retriever))
    channel = open_channel(f"127.0.0.1:{running.port}")
    yield retrieval_pb2_grpc.RetrievalServiceStub(channel)
    await channel.close()
    await running.stop(0)


async def test_modes_and_score_kinds_travel_over_grpc(
    stub: retrieval_pb2_grpc.RetrievalServiceStub,
) -> None:
    default = await stub.Search(retrieval_pb2.SearchRequest(query="ZX-4491 relay", top_k=3))
    assert default.mode == retrieval_pb2.SEARCH_MODE_HYBRID
    assert default.reranker == retrieval_pb2.RERANKER_NONE
    assert default.chunks[0].document_id == "relay"
    assert {c.score_kind for c in default.chunks} == {common_pb2.SCORE_KIND_HYBRID}
    keyword = await stub.Search(retrieval_pb2.SearchRequest(
        query="ZX-4491", mode=retrieval_pb2.SEARCH_MODE_KEYWORD))
    assert keyword.mode == retrieval_pb2.SEARCH_MODE_KEYWORD
    assert [(c.document_id, c.score_kind) for c in keyword.chunks] == [
        ("relay", common_pb2.SCORE_KIND_KEYWORD)
    ]


async def test_an_explicit_zero_threshold_differs_from_an_unset_one(
    stub: retrieval_pb2_grpc.RetrievalServiceStub,
) -> None:
    dense = retrieval_pb2.SEARCH_MODE_DENSE
    unset = await stub.Search(retrieval_pb2.SearchRequest(
        query="How do I renew my passport?", mode=dense, top_k=4))
    assert list(unset.chunks) == []  # the 0.25 cosine default keeps off-topic chunks out
    everything = await stub.Search(retrieval_pb2.SearchRequest(
        query="How do I renew my passport?", mode=dense, top_k=4, min_score=-1.0))
    assert len(everything.chunks) == 4


async def test_filters_and_bad_requests(stub: retrieval_pb2_grpc.RetrievalServiceStub) -> None:
    nothing = common_pb2.MetadataFilter(sources=["nope.md"])
    empty = await stub.Search(retrieval_pb2.SearchRequest(query="relay", filter=nothing))
    assert list(empty.chunks) == []
    for request, field in (
        (retrieval_pb2.SearchRequest(query=""), "query"),
        (retrieval_pb2.SearchRequest(query="relay", rerank=True), "rerank"),  # none configured
        (retrieval_pb2.SearchRequest(query="relay", mode=7), "mode"),  # type: ignore[arg-type]
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Search(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # The status details name the reason and the field at fault.
        info, bad = error_info(err.value.trailing_metadata())
        assert info is not None and (info.reason, info.domain) == ("INVALID_ARGUMENT", ERROR_DOMAIN)
        assert bad is not None and [v.field for v in bad.field_violations] == [field]
        assert bad.field_violations[0].description == err.value.details()
        # grpcio-status (what clients use) reads the same, consistent status.
        assert rpc_status.from_call(err.value).code == err.value.code().value[0]
