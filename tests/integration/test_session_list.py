"""ListSessions / UpdateSession and GET/PATCH /sessions: real gRPC, real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from psycopg_pool import ConnectionPool
from ragchat.common.v1 import common_pb2
from ragchat.memory.v1 import memory_pb2, memory_pb2_grpc

from services.common.db import migrate
from services.common.grpc_client import open_channel
from services.common.grpc_server import start_server
from services.gateway.app import create_app
from services.gateway.clients import ServiceClients
from services.gateway.config import GatewaySettings
from services.memory import servicer
from services.memory.store import SessionStore

U, A = common_pb2.ROLE_USER, common_pb2.ROLE_ASSISTANT


@pytest.fixture
async def gateway(clean_pool: ConnectionPool) -> AsyncIterator[httpx.AsyncClient]:
    running = await start_server(
        "127.0.0.1:0", lambda s: servicer.register(s, SessionStore(clean_pool))
    )
    settings = GatewaySettings(memory_target=f"127.0.0.1:{running.port}")
    app = create_app(settings)
    app.state.clients = ServiceClients.connect(settings)  # the lifespan is not run here
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http
    await app.state.clients.close()
    await running.stop(0)


async def _ask(memory: memory_pb2_grpc.MemoryServiceStub, sid: str, question: str) -> None:
    await memory.AppendTurns(memory_pb2.AppendTurnsRequest(session_id=sid, turns=[
        common_pb2.Turn(role=U, content=question), common_pb2.Turn(role=A, content="answer"),
    ]))


async def test_sessions_list_newest_activity_first_in_keyset_pages(
    clean_pool: ConnectionPool,
) -> None:
    running = await start_server(
        "127.0.0.1:0", lambda s: servicer.register(s, SessionStore(clean_pool))
    )
    async with open_channel(f"127.0.0.1:{running.port}") as channel:
        memory = memory_pb2_grpc.MemoryServiceStub(channel)
        ids = [(await memory.CreateSession(memory_pb2.CreateSessionRequest())).session_id
               for _ in range(5)]
        await _ask(memory, ids[1], "  What is the\n leave   policy?  ")
        await _ask(memory, ids[1], "And for part-timers?")
        await _ask(memory, ids[3], "x" * 300)
        seen, token = [], ""
        while True:
            page = await memory.ListSessions(
                memory_pb2.ListSessionsRequest(page_size=2, page_token=token))
            seen.extend(page.sessions)
            token = page.next_page_token
            if not token:
                break
        assert [s.session_id for s in seen] == [ids[3], ids[1], ids[4], ids[2], ids[0]]
        by_id = {s.session_id: s for s in seen}
        # The first question, on one line, is the title; later questions keep it.
        assert by_id[ids[1]].title == "What is the leave policy?"
        assert by_id[ids[1]].turn_count == 4
        assert len(by_id[ids[3]].title) == 80 and by_id[ids[3]].title.endswith("…")
        assert by_id[ids[0]].title == "" and by_id[ids[0]].turn_count == 0
        assert by_id[ids[1]].update_time.ToDatetime() > by_id[ids[1]].create_time.ToDatetime()
        for bad in (memory_pb2.ListSessionsRequest(page_size=501),
                    memory_pb2.ListSessionsRequest(page_token="not-a-token")):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await memory.ListSessions(bad)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await running.stop(0)


async def test_rename_over_rest_moves_the_session_first_and_sticks(
    gateway: httpx.AsyncClient,
) -> None:
    older = (await gateway.post("/sessions")).json()["session_id"]
    newer = (await gateway.post("/sessions")).json()["session_id"]
    renamed = await gateway.patch(f"/sessions/{older}", json={"title": "  Leave questions "})
    assert renamed.status_code == 200
    assert renamed.json()["title"] == "Leave questions"
    listed = (await gateway.get("/sessions")).json()
    assert [s["session_id"] for s in listed["sessions"]] == [older, newer]
    assert listed["next_page_token"] is None
    first = (await gateway.get("/sessions", params={"page_size": 1})).json()
    rest = (await gateway.get(
        "/sessions", params={"page_size": 1, "page_token": first["next_page_token"]})).json()
    assert [s["session_id"] for s in first["sessions"] + rest["sessions"]] == [older, newer]


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/sessions/nope", {"title": "x"}, 404, "not_found"),
        ("/sessions/{sid}", {"title": "   "}, 422, "invalid_argument"),
        ("/sessions/{sid}", {"title": ""}, 422, "invalid_request"),
        ("/sessions/{sid}", {"title": "x", "colour": "red"}, 422, "invalid_request"),
        ("/sessions/{sid}", {"title": "x" * 201}, 422, "invalid_request"),
    ],
)
async def test_bad_renames_are_clear_errors(
    gateway: httpx.AsyncClient, path: str, body: dict[str, str], status: int, error: str
) -> None:
    sid = (await gateway.post("/sessions")).json()["session_id"]
    response = await gateway.patch(path.format(sid=sid), json=body)
    assert response.status_code == status
    assert response.json()["error"] == error
    bad_page = await gateway.get("/sessions", params={"page_token": "garbage"})
    assert bad_page.status_code == 422 and "page_token" in bad_page.json()["detail"]


def test_migration_titles_and_dates_sessions_made_before_titles(
    clean_pool: ConnectionPool, postgres: Any
) -> None:
    """A database from before ListSessions: old sessions get their first question as
    title and their last turn's time, and list in that order."""
    with clean_pool.connection() as conn:
        conn.execute("ALTER TABLE sessions DROP COLUMN updated_at, DROP COLUMN title")
        conn.execute("INSERT INTO sessions (session_id, created_at) VALUES"
                     " ('old', now() - interval '3 days'), ('older', now() - interval '5 days')")
        conn.execute(
            "INSERT INTO turns (session_id, seq, role, content, created_at) VALUES"
            " ('older', 0, 'user', ' First\n question?', now() - interval '1 day'),"
            " ('older', 1, 'assistant', 'Answer.', now() - interval '1 day')")
    migrate(postgres.dsn, 384)
    rows = SessionStore(clean_pool).index.page(10, None)
    assert [(r.session_id, r.title, r.turn_count) for r in rows] == [
        ("older", "First question?", 2), ("old", "", 0)]
