"""A chunk's page and heading path reach REST citations and search hits unchanged."""

from __future__ import annotations

from services.common.protomap import chunk_from_pb, chunk_to_pb
from services.common.types import ScoredChunk
from services.gateway.schemas import Citation, SearchHit
from services.gateway.search import chunk_view


def _chunk(page: int | None, heading: str) -> ScoredChunk:
    return ScoredChunk("d:3", "d", "Handbook", "handbook.pdf", "25 days.", 3, 0.5, "hybrid",
                       page=page, heading=heading)


def test_page_and_heading_survive_the_proto_round_trip() -> None:
    for chunk in (_chunk(12, "Benefits > Leave"), _chunk(None, "")):
        assert chunk_from_pb(chunk_to_pb(chunk)) == chunk


def test_citations_and_hits_show_page_and_heading() -> None:
    pb = chunk_to_pb(_chunk(12, "Benefits > Leave"))
    citation = chunk_view(pb, Citation).model_dump()
    assert (citation["page"], citation["heading"]) == (12, "Benefits > Leave")
    hit = chunk_view(pb, SearchHit).model_dump()
    assert (hit["page"], hit["heading"], hit["ordinal"]) == (12, "Benefits > Leave", 3)


def test_an_unknown_page_is_null_not_zero() -> None:
    citation = chunk_view(chunk_to_pb(_chunk(None, "")), Citation).model_dump(mode="json")
    assert citation["page"] is None and citation["heading"] == ""
