"""MemoryService: maps protobuf requests onto the session store."""

from __future__ import annotations

import asyncio

import grpc
from opentelemetry import trace
from ragchat.memory.v1 import memory_pb2, memory_pb2_grpc

from services.common import paging as keyset
from services.common.errors import InvalidArgument
from services.common.idempotency import request_key
from services.common.protomap import timestamp, turn_to_pb, turns_from_pb
from services.common.telemetry import ATTR_SESSION_ID
from services.memory import listing
from services.memory.store import SessionStore


def _require_id(session_id: str) -> str:
    if not session_id.strip():
        raise InvalidArgument("session_id is required", field="session_id")
    trace.get_current_span().set_attribute(ATTR_SESSION_ID, session_id)
    return session_id


class MemoryServicer(memory_pb2_grpc.MemoryServiceServicer):
    def __init__(self, store: SessionStore) -> None:
        self._store = store

    async def CreateSession(
        self, request: memory_pb2.CreateSessionRequest, context: grpc.aio.ServicerContext
    ) -> memory_pb2.CreateSessionResponse:
        key = request_key("memory.CreateSession", request)
        session = await asyncio.to_thread(self._store.create, key)
        trace.get_current_span().set_attribute(ATTR_SESSION_ID, session.session_id)
        return memory_pb2.CreateSessionResponse(
            session_id=session.session_id, create_time=timestamp(session.created_at)
        )

    async def GetSession(
        self, request: memory_pb2.GetSessionRequest, context: grpc.aio.ServicerContext
    ) -> memory_pb2.GetSessionResponse:
        if request.max_turns < 0:
            raise InvalidArgument("max_turns must not be negative", field="max_turns")
        session = await asyncio.to_thread(
            self._store.get, _require_id(request.session_id), request.max_turns
        )
        return memory_pb2.GetSessionResponse(
            session_id=session.session_id,
            create_time=timestamp(session.created_at),
            turns=[turn_to_pb(t.role, t.content, t.created_at) for t in session.turns],
        )

    async def AppendTurns(
        self, request: memory_pb2.AppendTurnsRequest, context: grpc.aio.ServicerContext
    ) -> memory_pb2.AppendTurnsResponse:
        turns = turns_from_pb(request.turns)
        key = request_key("memory.AppendTurns", request)
        count = await asyncio.to_thread(
            self._store.append, _require_id(request.session_id), turns, key
        )
        return memory_pb2.AppendTurnsResponse(turn_count=count)

    async def DeleteSession(
        self, request: memory_pb2.DeleteSessionRequest, context: grpc.aio.ServicerContext
    ) -> memory_pb2.DeleteSessionResponse:
        key = request_key("memory.DeleteSession", request)
        await asyncio.to_thread(self._store.delete, _require_id(request.session_id), key)
        return memory_pb2.DeleteSessionResponse()

    async def ListSessions(
        self, request: memory_pb2.ListSessionsRequest, context: grpc.aio.ServicerContext
    ) -> memory_pb2.ListSessionsResponse:
        rows, token = await asyncio.to_thread(
            keyset.fetch_page, self._store.index.page, request.page_size,
            request.page_token, listing.session_key,
        )
        return memory_pb2.ListSessionsResponse(
            sessions=[_summary_pb(r) for r in rows], next_page_token=token
        )

    async def UpdateSession(
        self, request: memory_pb2.UpdateSessionRequest, context: grpc.aio.ServicerContext
    ) -> memory_pb2.UpdateSessionResponse:
        session_id = _require_id(request.session_id)
        summary = await asyncio.to_thread(self._store.index.rename, session_id, request.title)
        return memory_pb2.UpdateSessionResponse(session=_summary_pb(summary))


def _summary_pb(summary: listing.SessionSummary) -> memory_pb2.SessionSummary:
    return memory_pb2.SessionSummary(
        session_id=summary.session_id,
        title=summary.title,
        create_time=timestamp(summary.created_at),
        update_time=timestamp(summary.updated_at),
        turn_count=summary.turn_count,
    )


def register(server: grpc.aio.Server, store: SessionStore) -> list[str]:
    memory_pb2_grpc.add_MemoryServiceServicer_to_server(MemoryServicer(store), server)
    return [memory_pb2.DESCRIPTOR.services_by_name["MemoryService"].full_name]
