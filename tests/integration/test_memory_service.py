"""MemoryService over real gRPC (in-process, port 0) and real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg_pool import ConnectionPool
from ragchat.common.v1 import common_pb2
from ragchat.memory.v1 import memory_pb2, memory_pb2_grpc

from services.common.errors import ERROR_DOMAIN, error_info
from services.common.grpc_client import open_channel
from services.common.grpc_server import start_server
from services.common.idempotency import RequestLog
from services.gateway.app import create_app
from services.gateway.clients import ServiceClients
from services.gateway.config import GatewaySettings
from services.memory import servicer
from services.memory.store import SessionStore

U, A = common_pb2.ROLE_USER, common_pb2.ROLE_ASSISTANT


@pytest.fixture
async def memory(clean_pool) -> AsyncIterator[memory_pb2_grpc.MemoryServiceStub]:
    store = SessionStore(clean_pool)
    running = await start_server("127.0.0.1:0", lambda s: servicer.register(s, store))
    channel = open_channel(f"127.0.0.1:{running.port}")
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


async def test_retried_creates_and_appends_apply_once(
    memory: memory_pb2_grpc.MemoryServiceStub,
) -> None:
    create = memory_pb2.CreateSessionRequest(request_id="create-1")
    first, retry = await memory.CreateSession(create), await memory.CreateSession(create)
    assert (retry.session_id, retry.create_time) == (first.session_id, first.create_time)
    append = memory_pb2.AppendTurnsRequest(
        session_id=first.session_id, request_id="append-1",
        turns=[common_pb2.Turn(role=U, content="hi"), common_pb2.Turn(role=A, content="hello")],
    )
    # A burst of concurrent retries (e.g. a client that timed out) appends once.
    counts = await asyncio.gather(*(memory.AppendTurns(append) for _ in range(4)))
    assert [c.turn_count for c in counts] == [2, 2, 2, 2]
    session = await memory.GetSession(memory_pb2.GetSessionRequest(session_id=first.session_id))
    assert [t.content for t in session.turns] == ["hi", "hello"]
    other = memory_pb2.AppendTurnsRequest(
        session_id=first.session_id, request_id="append-1",
        turns=[common_pb2.Turn(role=U, content="something else")],
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await memory.AppendTurns(other)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    info, _ = error_info(err.value.trailing_metadata())
    assert info is not None and info.reason == "REQUEST_ID_REUSED"
    assert dict(info.metadata) == {"request_id": "append-1"}


async def test_a_retried_delete_succeeds_and_errors_carry_details(
    memory: memory_pb2_grpc.MemoryServiceStub,
) -> None:
    sid = (await memory.CreateSession(memory_pb2.CreateSessionRequest())).session_id
    delete = memory_pb2.DeleteSessionRequest(session_id=sid, request_id="delete-1")
    await memory.DeleteSession(delete)
    await memory.DeleteSession(delete)  # the retry is not NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await memory.DeleteSession(memory_pb2.DeleteSessionRequest(session_id=sid))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    info, bad = error_info(err.value.trailing_metadata())
    assert info is not None and bad is None
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "SESSION_NOT_FOUND", ERROR_DOMAIN, {"session_id": sid}
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await memory.AppendTurns(memory_pb2.AppendTurnsRequest(
            session_id=sid, turns=[common_pb2.Turn(role=U, content="ok"), common_pb2.Turn(role=A)]
        ))
    _, bad = error_info(err.value.trailing_metadata())
    assert bad is not None and [v.field for v in bad.field_violations] == ["turns[1].content"]


async def test_expired_request_ids_start_afresh(
    memory: memory_pb2_grpc.MemoryServiceStub, clean_pool: ConnectionPool
) -> None:
    create = memory_pb2.CreateSessionRequest(request_id="old")
    first = await memory.CreateSession(create)
    with clean_pool.connection() as conn:
        conn.execute("UPDATE request_log SET created_at = now() - interval '25 hours'")
    again = await memory.CreateSession(create)
    assert again.session_id != first.session_id
    assert RequestLog(clean_pool).purge() == 0  # the expired row was taken over
    with clean_pool.connection() as conn:
        conn.execute("UPDATE request_log SET created_at = now() - interval '25 hours'")
    assert RequestLog(clean_pool).purge() == 1


async def test_rest_idempotency_keys_on_session_routes(clean_pool: ConnectionPool) -> None:
    running = await start_server(
        "127.0.0.1:0", lambda s: servicer.register(s, SessionStore(clean_pool))
    )
    settings = GatewaySettings(memory_target=f"127.0.0.1:{running.port}")
    app = create_app(settings)
    app.state.clients = ServiceClients.connect(settings)  # the lifespan is not run here
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        key = {"Idempotency-Key": "s-1"}
        first, retry = await http.post("/sessions", headers=key), await http.post(
            "/sessions", headers=key)
        assert first.status_code == retry.status_code == 201
        assert first.json() == retry.json()
        sid = first.json()["session_id"]
        for _ in range(2):
            assert (await http.delete(f"/sessions/{sid}", headers=key)).status_code == 204
        gone = await http.delete(f"/sessions/{sid}")
        assert gone.status_code == 404
        assert gone.json()["error"] == "not_found" and gone.json()["reason"] == "SESSION_NOT_FOUND"
        bad = await http.post("/sessions", headers={"Idempotency-Key": "x" * 201})
        assert bad.status_code == 422 and bad.json()["reason"] == "INVALID_ARGUMENT"
    await app.state.clients.close()
    await running.stop(0)
