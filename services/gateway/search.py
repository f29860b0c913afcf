"""POST /search: retrieval without generation, and the SearchRequest /query also sends."""

from __future__ import annotations

from fastapi import APIRouter, Request
from ragchat.common.v1 import common_pb2
from ragchat.retrieval.v1 import retrieval_pb2

from services.common.protomap import timestamp
from services.gateway.clients import ServiceClients
from services.gateway.config import GatewaySettings
from services.gateway.schemas import (
    RetrievalOptions,
    SearchFilterBody,
    SearchHit,
    SearchRequestBody,
    SearchResults,
)

router = APIRouter(tags=["search"])

_MODE_TO_PB = {
    "dense": retrieval_pb2.SEARCH_MODE_DENSE,
    "keyword": retrieval_pb2.SEARCH_MODE_KEYWORD,
    "hybrid": retrieval_pb2.SEARCH_MODE_HYBRID,
}
_MODE_FROM_PB = {pb: name for name, pb in _MODE_TO_PB.items()}


def _filter_pb(body: SearchFilterBody) -> common_pb2.MetadataFilter:
    pb = common_pb2.MetadataFilter(
        sources=body.sources, tags=body.tags, document_ids=body.document_ids
    )
    if body.created_after is not None:
        pb.created_after.CopyFrom(timestamp(body.created_after))
    if body.created_before is not None:
        pb.created_before.CopyFrom(timestamp(body.created_before))
    return pb


def search_request(
    query: str, options: RetrievalOptions, settings: GatewaySettings
) -> retrieval_pb2.SearchRequest:
    """The retrieval request for a query; unset options are left to the service."""
    request = retrieval_pb2.SearchRequest(
        query=query, top_k=options.top_k or settings.default_top_k
    )
    if options.mode is not None:
        request.mode = _MODE_TO_PB[options.mode]
    if options.min_score is not None:
        request.min_score = options.min_score
    if options.rerank is not None:
        request.rerank = options.rerank
    if options.filter is not None:
        request.filter.CopyFrom(_filter_pb(options.filter))
    return request


@router.post("/search", response_model=SearchResults)
async def search(body: SearchRequestBody, request: Request) -> SearchResults:
    """The chunks most relevant to a query, best first, with the kind of each score."""
    clients: ServiceClients = request.app.state.clients
    settings: GatewaySettings = request.app.state.settings
    found = await clients.retrieval.Search(
        search_request(body.query, body, settings), timeout=settings.deadline_s
    )
    return SearchResults(
        mode=_MODE_FROM_PB.get(found.mode, "hybrid"),
        reranker=found.reranker or None,
        results=[
            SearchHit(
                document_id=c.document_id,
                chunk_id=c.chunk_id,
                source=c.source,
                title=c.title,
                ordinal=c.ordinal,
                score=round(c.score, 6),
                score_kind=c.score_kind,
                text=c.text,
            )
            for c in found.chunks
        ],
    )
