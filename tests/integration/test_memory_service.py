"""MemoryService over real gRPC (in-process, port 0) and real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ragchat.common.v1 import common_pb2
from ragchat.memory.v1 import memory_pb2, memory_pb2_grpc

from services.common.grpc_server import start_server
from services.memory import servicer
from services.memory.store import SessionStore

U, A = common_pb2.ROLE_USER, common_pb2.ROLE_ASSISTANT


@pytest.fixture
async def memory(clean_pool) -> AsyncIterator[memory_pb2_grpc.MemoryServiceStub]:
    store = SessionStore(clean_pool)
    running = await start_server("127.0.0.1:0", lambda s: servicer.register(s, store))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    yield memory_pb2_grpc.MemoryServiceStub(channel)
    await channel.close()
    await running.stop(0)


async def test_turns_come_back_in_order(memory: memory_pb2_grpc.MemoryServiceStub) -> None:
    sid = (await memory.CreateSession(memory_pb2.CreateSessionRequest())).session_id
    await memory.AppendTurns(
        memory_pb2.AppendTurnsRequest(
            session_id=sid,
            turns=[common_pb2.Turn(role=U, content="hi"), common_pb2.Turn(role=A, content="hello")],
        )
    )
    resp = await memory.AppendTurns(
        memory_pb2.AppendTurnsRequest(session_id=sid, turns=[common_pb2.Turn(role=U, content="?")])
    )
    assert resp.turn_count == 3
    session = await memory.GetSession(memory_pb2.GetSessionRequest(session_id=sid))
    assert [(t.role, t.content) for t in session.turns] == [(U, "hi"), (A, "hello"), (U, "?")]
    last = await memory.GetSession(memory_pb2.GetSessionRequest(session_id=sid, max_turns=2))
    assert [t.content for t in last.turns] == ["hello", "?"]


async def test_unknown_session_is_not_found(memory: memory_pb2_grpc.MemoryServiceStub) -> None:
    for call in (
        memory.GetSession(memory_pb2.GetSessionRequest(session_id="nope")),
        memory.DeleteSession(memory_pb2.DeleteSessionRequest(session_id="nope")),
        memory.AppendTurns(
            memory_pb2.AppendTurnsRequest(
                session_id="nope", turns=[common_pb2.Turn(role=U, content="x")]
            )
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert "not found" in (err.value.details() or "")


async def test_bad_turns_are_rejected_and_nothing_is_stored(
    memory: memory_pb2_grpc.MemoryServiceStub,
) -> None:
    sid = (await memory.CreateSession(memory_pb2.CreateSessionRequest())).session_id
    bad = [
        [common_pb2.Turn(role=U, content="ok"), common_pb2.Turn(role=A, content="  ")],
        [common_pb2.Turn(content="no role")],
        [],
    ]
    for turns in bad:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await memory.AppendTurns(memory_pb2.AppendTurnsRequest(session_id=sid, turns=turns))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    session = await memory.GetSession(memory_pb2.GetSessionRequest(session_id=sid))
    assert list(session.turns) == []


async def test_deleted_session_is_gone(memory: memory_pb2_grpc.MemoryServiceStub) -> None:
    sid = (await memory.CreateSession(memory_pb2.CreateSessionRequest())).session_id
    await memory.DeleteSession(memory_pb2.DeleteSessionRequest(session_id=sid))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await memory.GetSession(memory_pb2.GetSessionRequest(session_id=sid))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_health_and_graceful_shutdown(clean_pool) -> None:
    running = await start_server(
        "127.0.0.1:0", lambda s: servicer.register(s, SessionStore(clean_pool))
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        name = "ragchat.memory.v1.MemoryService"
        resp = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
        await running.health.enter_graceful_shutdown()
        resp = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert resp.status == health_pb2.HealthCheckResponse.NOT_SERVING
    await running.server.stop(0)
