"""POST /query and /query/stream: memory -> retrieval -> generation -> memory."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from ragchat.common.v1 import common_pb2
from ragchat.generation.v1 import generation_pb2
from ragchat.memory.v1 import memory_pb2

from services.gateway import capacity
from services.gateway.clients import ServiceClients
from services.gateway.config import GatewaySettings
from services.gateway.errors import stream_error
from services.gateway.openapi import JSON_BODY, errors, event_stream, json_body
from services.gateway.schemas import Citation, QueryRequest, QueryResponse
from services.gateway.search import chunk_view, search_request

router = APIRouter(tags=["query"])


def citations_view(chunks: Sequence[common_pb2.Chunk]) -> list[Citation]:
    """The REST citations of an answer (the objects /query and /v1 return)."""
    return [chunk_view(c, Citation) for c in chunks]


def renumbered_view(final: generation_pb2.FinalAnswer) -> dict[str, int]:
    """`renumbered` as JSON: each [n] as streamed -> its number in the final citations."""
    return {str(k): v for k, v in sorted(final.renumbered.items())}


async def prepare_context(
    body: QueryRequest,
    clients: ServiceClients,
    settings: GatewaySettings,
    history: list[common_pb2.Turn] | None = None,
) -> tuple[str, list[common_pb2.Turn], list[common_pb2.Chunk]]:
    """Resolve the session and its history, and retrieve context chunks.

    A caller that brings its own `history` (and no session_id) gets no stored session:
    the returned session_id is then "".
    """
    deadline = settings.deadline_s
    if history is not None and not body.session_id:
        session_id = ""
    elif body.session_id:
        session = await clients.memory.GetSession(
            memory_pb2.GetSessionRequest(
                session_id=body.session_id, max_turns=settings.history_turns
            ),
            timeout=deadline,
        )
        session_id, history = session.session_id, list(session.turns)
    else:
        created = await clients.memory.CreateSession(
            memory_pb2.CreateSessionRequest(request_id=uuid.uuid4().hex), timeout=deadline
        )
        session_id, history = created.session_id, []
    query = await standalone_query(clients, settings, body.question, history)
    if body.rerank is None and settings.answer_rerank:
        body = body.model_copy(update={"rerank": True})
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


async def remember(
    clients: ServiceClients, settings: GatewaySettings, session_id: str, q: str, a: str
) -> None:
    await clients.memory.AppendTurns(
        # One id per request: a channel retry of this call cannot append twice.
        memory_pb2.AppendTurnsRequest(
            request_id=uuid.uuid4().hex,
            session_id=session_id,
            turns=[
                common_pb2.Turn(role=common_pb2.ROLE_USER, content=q),
                common_pb2.Turn(role=common_pb2.ROLE_ASSISTANT, content=a),
            ],
        ),
        timeout=settings.deadline_s,
    )


@router.post("/query", response_model=QueryResponse, dependencies=[Depends(json_body)],
             responses=errors(*JSON_BODY, 404, 502))
async def query(body: QueryRequest, request: Request) -> QueryResponse:
    """Answer a question from the indexed documents, with citations."""
    clients: ServiceClients = request.app.state.clients
    settings: GatewaySettings = request.app.state.settings
    slots = capacity.slots(request)
    with slots.admit():  # a full gateway refuses before any work
        session_id, history, chunks = await prepare_context(body, clients, settings)
        async with slots.generating():
            answer = await generate(clients, settings, body.question, chunks, history)
    await remember(clients, settings, session_id, body.question, answer.answer)
    return QueryResponse(
        answer=answer.answer,
        session_id=session_id,
        citations=citations_view(answer.citations),
        refused=answer.refused,
    )


def _generate_request(
    question: str,
    chunks: list[common_pb2.Chunk],
    history: list[common_pb2.Turn],
    max_tokens: int,
) -> generation_pb2.GenerateRequest:
    return generation_pb2.GenerateRequest(
        question=question, context=chunks, history=history, max_tokens=max_tokens
    )


async def generate(
    clients: ServiceClients,
    settings: GatewaySettings,
    question: str,
    chunks: list[common_pb2.Chunk],
    history: list[common_pb2.Turn],
    max_tokens: int = 0,
) -> generation_pb2.GenerateResponse:
    """The whole answer from the generation service (max_tokens 0: its default)."""
    request = _generate_request(question, chunks, history, max_tokens)
    return await clients.generation.Generate(request, timeout=settings.generate_deadline_s)


async def generate_stream(
    clients: ServiceClients,
    settings: GatewaySettings,
    question: str,
    chunks: list[common_pb2.Chunk],
    history: list[common_pb2.Turn],
    max_tokens: int = 0,
) -> AsyncIterator[str | generation_pb2.FinalAnswer]:
    """Text deltas, then the final message; raises if the stream ends without one."""
    call = clients.generation.GenerateStream(
        _generate_request(question, chunks, history, max_tokens),
        timeout=settings.generate_deadline_s,
    )
    async for part in call:
        if part.WhichOneof("event") == "delta":
            yield part.delta.text
            continue
        yield part.final
        return
    raise RuntimeError("the generation stream ended without a final message")


def done_event(session_id: str, final: generation_pb2.FinalAnswer) -> dict[str, object]:
    """The `done` event: the /query body plus `renumbered`, which maps each [n] as
    streamed in the deltas to its number in `answer` and `citations` (a number not in
    it pointed nowhere and is gone); see services.generation.citations.renumber."""
    done = QueryResponse(
        answer=final.answer,
        session_id=session_id,
        citations=citations_view(final.citations),
        refused=final.refused,
    )
    return {**done.model_dump(), "renumbered": renumbered_view(final)}


def _sse(event: str, data: dict[str, object]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


_STREAM_DOC = (
    "`event: delta` (`{\"text\"}`) events, then one `event: done` (the /query body plus "
    "`renumbered`), or an `event: error` in the JSON error shape with its `status`"
)


@router.post(
    "/query/stream", status_code=200, response_class=capacity.AdmittedStream,
    dependencies=[Depends(json_body)],
    responses={**event_stream(_STREAM_DOC, ("delta", "done", "error")), **errors(*JSON_BODY, 404)},
)
async def query_stream(body: QueryRequest, request: Request) -> StreamingResponse:
    """Like /query, streamed as server-sent events: `delta` events, then one `done`."""
    clients: ServiceClients = request.app.state.clients
    settings: GatewaySettings = request.app.state.settings
    slots = capacity.slots(request)
    with slots.admit() as admission:  # a full gateway refuses before any work
        session_id, history, chunks = await prepare_context(body, clients, settings)
        admission = admission.hand_over()  # released by the response when it ends

    async def events() -> AsyncIterator[str]:
        # Once the 200 is sent, a failure is reported as an `error` event in the usual
        # JSON error shape; the stream never just closes.
        try:
            async with slots.generating():
                async for part in generate_stream(
                    clients, settings, body.question, chunks, history
                ):
                    if isinstance(part, str):
                        yield _sse("delta", {"text": part})
                        continue
                    await remember(clients, settings, session_id, body.question, part.answer)
                    yield _sse("done", done_event(session_id, part))
        except Exception as exc:  # noqa: BLE001 - reported to the client below
            yield _sse("error", stream_error(exc))

    return capacity.AdmittedStream(events(), admission)
