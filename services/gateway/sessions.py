"""Session routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from ragchat.common.v1 import common_pb2
from ragchat.memory.v1 import memory_pb2

from services.gateway.clients import ServiceClients
from services.gateway.openapi import COMMON, errors
from services.gateway.schemas import (
    ID_PATTERN,
    MAX_ID,
    IdempotencyKey,
    SessionCreated,
    SessionView,
    TurnView,
)

router = APIRouter()
SessionId = Annotated[str, Path(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]
_ROLES = {common_pb2.ROLE_USER: "user", common_pb2.ROLE_ASSISTANT: "assistant"}


@router.post("/sessions", status_code=201, response_model=SessionCreated, tags=["sessions"],
             responses=errors(*COMMON, 409, 422))
async def create_session(
    request: Request, idempotency_key: IdempotencyKey = ""
) -> SessionCreated:
    """Start an empty conversation; pass its id to /query to keep context."""
    clients: ServiceClients = request.app.state.clients
    created = await clients.memory.CreateSession(
        memory_pb2.CreateSessionRequest(request_id=idempotency_key),
        timeout=request.app.state.settings.deadline_s,
    )
    return SessionCreated(session_id=created.session_id)


@router.get("/sessions/{session_id}", response_model=SessionView, tags=["sessions"],
            responses=errors(*COMMON, 404, 422))
async def get_session(session_id: SessionId, request: Request) -> SessionView:
    """A conversation's turns, oldest first."""
    clients: ServiceClients = request.app.state.clients
    session = await clients.memory.GetSession(
        memory_pb2.GetSessionRequest(session_id=session_id),
        timeout=request.app.state.settings.deadline_s,
    )
    return SessionView(
        session_id=session.session_id,
        turns=[TurnView(role=_ROLES[t.role], content=t.content) for t in session.turns],  # type: ignore[arg-type]
    )


@router.delete("/sessions/{session_id}", status_code=204, tags=["sessions"],
               responses=errors(*COMMON, 404, 409, 422))
async def delete_session(
    session_id: SessionId, request: Request, idempotency_key: IdempotencyKey = ""
) -> Response:
    """Forget a conversation; a retry with the same Idempotency-Key succeeds again."""
    clients: ServiceClients = request.app.state.clients
    await clients.memory.DeleteSession(
        memory_pb2.DeleteSessionRequest(session_id=session_id, request_id=idempotency_key),
        timeout=request.app.state.settings.deadline_s,
    )
    return Response(status_code=204)
