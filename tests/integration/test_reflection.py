"""Reflection answers v1 clients (grpcurl, Postman, buf curl) as well as v1alpha ones."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2
from ragchat.retrieval.v1 import retrieval_pb2

from services.common.grpc_server import RunningServer, start_server

SERVICE = retrieval_pb2.DESCRIPTOR.services_by_name["RetrievalService"].full_name


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    running = await start_server("127.0.0.1:0", lambda _server: [SERVICE])
    yield running
    await running.stop(0)


async def _ask(port: int, version: str,
               request: reflection_pb2.ServerReflectionRequest,
               ) -> reflection_pb2.ServerReflectionResponse:
    # The v1 and v1alpha messages are the same on the wire; only the method path differs.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        responses = [r async for r in call(iter([request]), timeout=5)]
    assert len(responses) == 1
    return responses[0]


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
async def test_reflection_lists_services_for_both_versions(
    server: RunningServer, version: str
) -> None:
    answer = await _ask(server.port, version,
                        reflection_pb2.ServerReflectionRequest(list_services="*"))
    names = {s.name for s in answer.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"} <= names


@pytest.mark.parametrize("symbol", [SERVICE, "grpc.reflection.v1.ServerReflection"])
async def test_v1_reflection_describes_services(server: RunningServer, symbol: str) -> None:
    answer = await _ask(server.port, "v1",
                        reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol))
    assert not answer.HasField("error_response"), answer.error_response.error_message
    files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
             for raw in answer.file_descriptor_response.file_descriptor_proto]
    package, _, name = symbol.rpartition(".")
    assert any(f.package == package and name in [s.name for s in f.service] for f in files)


async def test_unknown_symbol_is_an_error_not_a_hang(server: RunningServer) -> None:
    answer = await _ask(server.port, "v1", reflection_pb2.ServerReflectionRequest(
        file_containing_symbol="ragchat.nope.v1.Missing"))
    assert answer.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
