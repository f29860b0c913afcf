"""Conversions between the shared protobuf messages and the domain types."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from ragchat.common.v1 import common_pb2
from ragchat.retrieval.v1 import retrieval_pb2

from services.common.errors import InvalidArgument
from services.common.types import HistoryTurn, ScoredChunk, SearchFilter

_ROLE_TO_PB = {"user": common_pb2.ROLE_USER, "assistant": common_pb2.ROLE_ASSISTANT}
_PB_TO_ROLE = {v: k for k, v in _ROLE_TO_PB.items()}
# Search modes by name; SEARCH_MODE_UNSPECIFIED means "the service default" and has none.
SEARCH_MODE_TO_PB = {
    "dense": retrieval_pb2.SEARCH_MODE_DENSE,
    "keyword": retrieval_pb2.SEARCH_MODE_KEYWORD,
    "hybrid": retrieval_pb2.SEARCH_MODE_HYBRID,
}
SEARCH_MODE_FROM_PB = {pb: name for name, pb in SEARCH_MODE_TO_PB.items()}
# Score kinds and rerankers by the names the domain (and the REST API) uses.
SCORE_KIND_TO_PB = {
    "dense": common_pb2.SCORE_KIND_DENSE,
    "keyword": common_pb2.SCORE_KIND_KEYWORD,
    "hybrid": common_pb2.SCORE_KIND_HYBRID,
    "rerank:cross-encoder": common_pb2.SCORE_KIND_RERANK_CROSS_ENCODER,
    "rerank:embedding": common_pb2.SCORE_KIND_RERANK_EMBEDDING,
    "rerank:blend": common_pb2.SCORE_KIND_RERANK_BLEND,
}
SCORE_KIND_FROM_PB = {pb: name for name, pb in SCORE_KIND_TO_PB.items()}
RERANKER_TO_PB = {
    "": retrieval_pb2.RERANKER_NONE,
    "cross-encoder": retrieval_pb2.RERANKER_CROSS_ENCODER,
    "embedding": retrieval_pb2.RERANKER_EMBEDDING,
    "blend": retrieval_pb2.RERANKER_BLEND,
}
RERANKER_FROM_PB = {pb: name for name, pb in RERANKER_TO_PB.items()}


def timestamp(value: datetime | None) -> Timestamp:
    ts = Timestamp()
    if value is not None:
        ts.FromDatetime(value.astimezone(UTC))
    return ts


def from_timestamp(ts: Timestamp, present: bool) -> datetime | None:
    return ts.ToDatetime(tzinfo=UTC) if present else None


def chunk_to_pb(chunk: ScoredChunk) -> common_pb2.Chunk:
    return common_pb2.Chunk(
        chunk_id=chunk.chunk_id,
        document_id=chunk.document_id,
        title=chunk.title,
        source=chunk.source,
        text=chunk.text,
        score=chunk.score,
        score_kind=SCORE_KIND_TO_PB[chunk.score_kind],
        ordinal=chunk.ordinal,
        page=chunk.page or 0,
        heading_path=chunk.heading,
    )


def chunk_from_pb(pb: common_pb2.Chunk) -> ScoredChunk:
    return ScoredChunk(
        chunk_id=pb.chunk_id,
        document_id=pb.document_id,
        title=pb.title,
        source=pb.source,
        text=pb.text,
        ordinal=pb.ordinal,
        score=pb.score,
        score_kind=SCORE_KIND_FROM_PB.get(pb.score_kind, "dense"),
        page=pb.page or None,
        heading=pb.heading_path,
    )


def turn_to_pb(role: str, content: str, created_at: datetime | None = None) -> common_pb2.Turn:
    return common_pb2.Turn(
        role=_ROLE_TO_PB[role], content=content, create_time=timestamp(created_at)
    )


def turns_from_pb(
    turns: Iterable[common_pb2.Turn], field: str = "turns"
) -> list[HistoryTurn]:
    """Domain turns; `field` names the repeated field in a BadRequest violation."""
    out = []
    for i, turn in enumerate(turns):
        role = _PB_TO_ROLE.get(turn.role)
        if role is None:
            raise InvalidArgument(
                "turn role must be ROLE_USER or ROLE_ASSISTANT", field=f"{field}[{i}].role"
            )
        out.append(HistoryTurn(role=role, content=turn.content))
    return out


def filter_from_pb(pb: common_pb2.MetadataFilter) -> SearchFilter:
    return SearchFilter(
        sources=tuple(pb.sources),
        tags=tuple(pb.tags),
        created_after=from_timestamp(pb.created_after, pb.HasField("created_after")),
        created_before=from_timestamp(pb.created_before, pb.HasField("created_before")),
        document_ids=tuple(pb.document_ids),
    )
