"""POST /search: retrieval without generation, and the SearchRequest /query also sends."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import ORJSONResponse
from ragchat.common.v1 import common_pb2
from ragchat.retrieval.v1 import retrieval_pb2

from services.common.protomap import (
    RERANKER_FROM_PB,
    SCORE_KIND_FROM_PB,
    SEARCH_MODE_FROM_PB,
    SEARCH_MODE_TO_PB,
    timestamp,
)
from services.gateway.clients import ServiceClients
from services.gateway.config import GatewaySettings
from services.gateway.openapi import JSON_BODY, errors, json_body
from services.gateway.schemas import (
    Citation,
    RetrievalOptions,
    SearchFilterBody,
    SearchRequestBody,
    SearchResults,
)

router = APIRouter(tags=["search"])
CitationT = TypeVar("CitationT", bound=Citation)


def _filter_pb(body: SearchFilterBody) -> common_pb2.MetadataFilter:
    pb = common_pb2.MetadataFilter(
        sources=body.sources, tags=body.tags, document_ids=body.document_ids
    )
    if body.created_after is not None:
        pb.created_after.CopyFrom(timestamp(body.created_after))
    if body.created_before is not None:
        pb.created_before.CopyFrom(timestamp(body.created_before))
    return pb


def hit_fields(chunk: common_pb2.Chunk) -> dict[str, Any]:
    """A retrieved chunk as the fields of a SearchHit (a Citation ignores `ordinal`)."""
    return {
        "document_id": chunk.document_id,
        "chunk_id": chunk.chunk_id,
        "source": chunk.source,
        "title": chunk.title,
        "score": round(chunk.score, 6),
        "score_kind": SCORE_KIND_FROM_PB.get(chunk.score_kind, "dense"),
        "text": chunk.text,
        "page": chunk.page or None,
        "heading": chunk.heading_path,
        "ordinal": chunk.ordinal,
    }


def chunk_view(chunk: common_pb2.Chunk, view: type[CitationT]) -> CitationT:
    """A retrieved chunk as a REST citation or search hit."""
    return view(**hit_fields(chunk))


def search_request(
    query: str, options: RetrievalOptions, settings: GatewaySettings
) -> retrieval_pb2.SearchRequest:
    """The retrieval request for a query; unset options are left to the service."""
    request = retrieval_pb2.SearchRequest(
        query=query, top_k=options.top_k or settings.default_top_k
    )
    if options.mode is not None:
        request.mode = SEARCH_MODE_TO_PB[options.mode]
    if options.min_score is not None:
        request.min_score = options.min_score
    if options.rerank is not None:
        request.rerank = options.rerank
    if options.filter is not None:
        request.filter.CopyFrom(_filter_pb(options.filter))
    return request


@router.post("/search", response_model=SearchResults, response_class=ORJSONResponse,
             dependencies=[Depends(json_body)], responses=errors(*JSON_BODY))
async def search(body: SearchRequestBody, request: Request) -> ORJSONResponse:
    """The chunks most relevant to a query, best first, with the kind of each score."""
    clients: ServiceClients = request.app.state.clients
    settings: GatewaySettings = request.app.state.settings
    found = await clients.retrieval.Search(
        search_request(body.query, body, settings), timeout=settings.deadline_s
    )
    # The hot path: the hits go straight from protobuf to orjson, without a second
    # pydantic validation of the response (SearchResults documents its shape).
    return ORJSONResponse({
        "mode": SEARCH_MODE_FROM_PB.get(found.mode, "hybrid"),
        "reranker": RERANKER_FROM_PB.get(found.reranker) or None,
        "results": [hit_fields(c) for c in found.chunks],
    })
