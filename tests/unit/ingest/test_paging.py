"""Keyset page tokens: opaque, round-tripping, and refused when forged or mangled."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.common import paging as keyset
from services.common.errors import InvalidArgument
from services.common.types import DocumentMeta
from services.ingest import paging
from services.ingest.jobs import DocumentRow


def _row(created: datetime, document_id: str) -> DocumentRow:
    meta = DocumentMeta(document_id, "t", "t.txt", "text/plain", created_at=created)
    return DocumentRow(meta=meta, size_bytes=1, object_key="k", status="indexed", chunk_count=1)


def test_a_token_round_trips_to_microsecond_precision() -> None:
    created = datetime(2026, 11, 25, 18, 30, 1, 123456, tzinfo=UTC)
    token = keyset.encode_key(*paging.document_key(_row(created, "4b7e")))
    assert token.isascii() and "4b7e" not in token  # opaque, URL-safe
    assert keyset.decode_key(token) == (created, "4b7e")
    assert keyset.decode_key("") is None


@pytest.mark.parametrize("token", ["20", "!!!", "bnVsbA", "WyJub3QgYSBkYXRlIiwiYSJd",
                                   "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwiYSJd"])
def test_a_mangled_token_is_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument, match="page_token is not valid"):
        keyset.decode_key(token)


@pytest.mark.parametrize(("asked", "used"), [(0, 100), (1, 1), (500, 500)])
def test_page_sizes(asked: int, used: int) -> None:
    assert keyset.page_size(asked) == used


@pytest.mark.parametrize("asked", [-1, 501])
def test_page_sizes_out_of_range_are_refused(asked: int) -> None:
    with pytest.raises(InvalidArgument, match="between 1 and 500"):
        keyset.page_size(asked)
