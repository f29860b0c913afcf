"""POST /query and /query/stream: memory -> retrieval -> generation -> memory."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from ragchat.common.v1 import common_pb2
from ragchat.generation.v1 import generation_pb2
from ragchat.memory.v1 import memory_pb2

from services.gateway.clients import ServiceClients
from services.gateway.config import GatewaySettings
from services.gateway.errors import stream_error
from services.gateway.schemas import Citation, QueryRequest, QueryResponse
from services.gateway.search import chunk_view, search_request

router = APIRouter(tags=["query"])


def _citations(chunks: list[common_pb2.Chunk]) -> list[Citation]:
    return [chunk_view(c, Citation) for c in chunks]


async def _prepare(
    body: QueryRequest, clients: ServiceClients, settings: GatewaySettings
) -> tuple[str, list[common_pb2.Turn], list[common_pb2.Chunk]]:
    """Resolve the session and its history, and retrieve context chunks."""
    deadline = settings.deadline_s
    if body.session_id:
        session = await clients.memory.GetSession(
            memory_pb2.GetSessionRequest(
                session_id=body.session_id, max_turns=settings.history_turns
            ),
            timeout=deadline,
        )
        session_id, history = session.session_id, list(session.turns)
    else:
        created = await clients.memory.CreateSession(
            memory_pb2.CreateSessionRequest(), timeout=deadline
        )
        session_id, history = created.session_id, []
    query = await standalone_query(clients, settings, body.question, history)
    found = await clients.retrieval.Search(search_request(query, body, settings), timeout=deadline)
    return session_id, history, list(found.chunks)


async def standalone_query(
    clients: ServiceClients, settings: GatewaySettings, question: str,
    history: list[common_pb2.Turn],
) -> str:
    """The retrieval query for a question: a follow-up is rewritten from the history
    (generation's RewriteQuery); a first question is searched as asked."""
    if not history:
        return question
    rewritten = await clients.generation.RewriteQuery(
        generation_pb2.RewriteQueryRequest(question=question, history=history),
        timeout=settings.deadline_s,
    )
    return rewritten.query or question


async def _remember(
    clients: ServiceClients, settings: GatewaySettings, session_id: str, q: str, a: str
) -> None:
    await clients.memory.AppendTurns(
        memory_pb2.AppendTurnsRequest(
            session_id=session_id,
            turns=[
                common_pb2.Turn(role=common_pb2.ROLE_USER, content=q),
                common_pb2.Turn(role=common_pb2.ROLE_ASSISTANT, content=a),
            ],
        ),
        timeout=settings.deadline_s,
    )


@router.post("/query", response_model=QueryResponse)
async def query(body: QueryRequest, request: Request) -> QueryResponse:
    """Answer a question from the indexed documents, with citations."""
    clients: ServiceClients = request.app.state.clients
    settings: GatewaySettings = request.app.state.settings
    session_id, history, chunks = await _prepare(body, clients, settings)
    answer = await clients.generation.Generate(
        generation_pb2.GenerateRequest(question=body.question, context=chunks, history=history),
        timeout=settings.generate_deadline_s,
    )
    await _remember(clients, settings, session_id, body.question, answer.answer)
    return QueryResponse(
        answer=answer.answer,
        session_id=session_id,
        citations=_citations(list(answer.citations)),
        refused=answer.refused,
    )


def done_event(session_id: str, final: generation_pb2.FinalAnswer) -> dict[str, object]:
    """The `done` event: the /query body plus `renumbered`, which maps each [n] as
    streamed in the deltas to its number in `answer` and `citations` (a number not in
    it pointed nowhere and is gone); see services.generation.citations.renumber."""
    done = QueryResponse(
        answer=final.answer,
        session_id=session_id,
        citations=_citations(list(final.citations)),
        refused=final.refused,
    )
    renumbered = {str(k): v for k, v in sorted(final.renumbered.items())}
    return {**done.model_dump(), "renumbered": renumbered}


def _sse(event: str, data: dict[str, object]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


@router.post("/query/stream")
async def query_stream(body: QueryRequest, request: Request) -> StreamingResponse:
    """Like /query, streamed as server-sent events: `delta` events, then one `done`."""
    clients: ServiceClients = request.app.state.clients
    settings: GatewaySettings = request.app.state.settings
    session_id, history, chunks = await _prepare(body, clients, settings)
    call = clients.generation.GenerateStream(
        generation_pb2.GenerateRequest(question=body.question, context=chunks, history=history),
        timeout=settings.generate_deadline_s,
    )

    async def events() -> AsyncIterator[str]:
        # Once the 200 is sent, a failure is reported as an `error` event in the usual
        # JSON error shape; the stream never just closes.
        try:
            async for part in call:
                if part.WhichOneof("event") == "delta":
                    yield _sse("delta", {"text": part.delta.text})
                    continue
                final = part.final
                await _remember(clients, settings, session_id, body.question, final.answer)
                yield _sse("done", done_event(session_id, final))
                return
            raise RuntimeError("the generation stream ended without a final message")
        except Exception as exc:  # noqa: BLE001 - reported to the client below
            yield _sse("error", stream_error(exc))

    return StreamingResponse(events(), media_type="text/event-stream")
