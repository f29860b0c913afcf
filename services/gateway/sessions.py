"""Session routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from google.protobuf import timestamp_pb2
from pydantic import BaseModel, ConfigDict, Field
from ragchat.common.v1 import common_pb2
from ragchat.memory.v1 import memory_pb2

from services.gateway.clients import ServiceClients
from services.gateway.openapi import COMMON, JSON_BODY, errors, json_body
from services.gateway.schemas import (
    ID_PATTERN,
    MAX_ID,
    NO_NUL,
    IdempotencyKey,
    SafeText,
    SessionCreated,
    SessionView,
    TurnView,
)

router = APIRouter()
SessionId = Annotated[str, Path(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]
_ROLES = {common_pb2.ROLE_USER: "user", common_pb2.ROLE_ASSISTANT: "assistant"}
MAX_PAGE_SIZE = 500


class SessionSummaryView(BaseModel):
    session_id: str
    title: str = Field(description="renamed title, else the start of the first question")
    created_at: datetime
    updated_at: datetime = Field(description="last turn or rename")
    turn_count: int


class SessionPage(BaseModel):
    sessions: list[SessionSummaryView]
    next_page_token: str | None = Field(
        default=None, description="opaque; pass as page_token for the next page"
    )


class SessionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    title: SafeText = Field(min_length=1, max_length=200, json_schema_extra={"pattern": NO_NUL})


def _time(stamp: timestamp_pb2.Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def _summary_view(s: memory_pb2.SessionSummary) -> SessionSummaryView:
    return SessionSummaryView(
        session_id=s.session_id,
        title=s.title,
        created_at=_time(s.create_time),
        updated_at=_time(s.update_time),
        turn_count=s.turn_count,
    )


@router.get("/sessions", response_model=SessionPage, tags=["sessions"],
            responses=errors(*COMMON, 422))
async def list_sessions(
    request: Request,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
    page_token: Annotated[str, Query(
        max_length=1024, pattern="^[A-Za-z0-9_=-]*$",
        description="a previous page's next_page_token (422 for any other value)",
    )] = "",
) -> SessionPage:
    """Conversations, most recently updated first, in keyset pages."""
    clients: ServiceClients = request.app.state.clients
    page = await clients.memory.ListSessions(
        memory_pb2.ListSessionsRequest(page_size=page_size, page_token=page_token),
        timeout=request.app.state.settings.deadline_s,
    )
    return SessionPage(
        sessions=[_summary_view(s) for s in page.sessions],
        next_page_token=page.next_page_token or None,
    )


@router.patch("/sessions/{session_id}", response_model=SessionSummaryView, tags=["sessions"],
              dependencies=[Depends(json_body)], responses=errors(*JSON_BODY, 404))
async def update_session(
    session_id: SessionId, body: SessionPatch, request: Request
) -> SessionSummaryView:
    """Rename a conversation."""
    clients: ServiceClients = request.app.state.clients
    updated = await clients.memory.UpdateSession(
        memory_pb2.UpdateSessionRequest(session_id=session_id, title=body.title),
        timeout=request.app.state.settings.deadline_s,
    )
    return _summary_view(updated.session)


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
