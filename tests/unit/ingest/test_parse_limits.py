"""Each parse limit stops a document with a reason naming the setting; zip bombs are refused."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable

import pytest

from services.ingest.config import IngestSettings
from services.ingest.parsing import ParseError, ParseLimits, parse_document
from tests.unit.ingest.documents import (
    docx_bytes,
    pdf_bytes,
    pptx_bytes,
    with_member,
    xlsx_bytes,
)

MB = 1024 * 1024


def _understate_size(archive: bytes, name: str, size: int) -> bytes:
    """Rewrite the central directory so `name` claims to inflate to `size` bytes."""
    entry = archive.rindex(b"PK\x01\x02", 0, archive.rindex(name.encode()) + 1)
    return archive[: entry + 24] + struct.pack("<I", size) + archive[entry + 28 :]


def test_defaults_come_from_the_settings() -> None:
    limits = IngestSettings(max_pages=10, max_decompressed_mb=1.5, parse_timeout_s=3).parse_limits
    assert limits == ParseLimits(max_pages=10, max_decompressed_bytes=int(1.5 * MB), timeout_s=3)
    assert IngestSettings().parse_limits == ParseLimits()


def test_a_pdf_over_the_page_limit_is_refused() -> None:
    data = pdf_bytes(["one", "two", "three"])
    with pytest.raises(ParseError, match=r"3 pages; the limit is 2 \(RAGCHAT_MAX_PAGES\)"):
        parse_document("pdf", data, ParseLimits(max_pages=2))
    assert len(parse_document("pdf", data, ParseLimits(max_pages=3)).sections) == 3


def test_a_presentation_over_the_page_limit_is_refused() -> None:
    with pytest.raises(ParseError, match=r"3 slides; the limit is 2 \(RAGCHAT_MAX_PAGES\)"):
        parse_document("pptx", pptx_bytes(slides=3), ParseLimits(max_pages=2))


@pytest.mark.parametrize(
    ("kind", "make"), [("docx", docx_bytes), ("pptx", pptx_bytes), ("xlsx", xlsx_bytes)]
)
def test_a_zip_bomb_is_refused_by_its_declared_size(kind: str, make: Callable[[], bytes]) -> None:
    bomb = with_member(make(), "customXml/padding.xml", b"\0" * (8 * MB))
    assert len(bomb) < 200_000  # tiny upload, 8 MB once inflated
    with pytest.raises(ParseError, match="more than 4 MB .*RAGCHAT_MAX_DECOMPRESSED_MB"):
        parse_document(kind, bomb, ParseLimits(max_decompressed_bytes=4 * MB))
    assert parse_document(kind, bomb, ParseLimits(max_decompressed_bytes=16 * MB)).sections


def test_a_zip_bomb_lying_about_its_size_is_refused_while_reading() -> None:
    bomb = with_member(docx_bytes(), "customXml/padding.xml", b"\0" * (8 * MB))
    liar = _understate_size(bomb, "customXml/padding.xml", 100)
    with zipfile.ZipFile(io.BytesIO(liar)) as archive:
        assert sum(i.file_size for i in archive.infolist()) < 4 * MB  # passes the declared check
    with pytest.raises(ParseError, match="could not parse DOCX: damaged zip container"):
        parse_document("docx", liar, ParseLimits(max_decompressed_bytes=4 * MB))


@pytest.mark.parametrize(
    ("kind", "data"),
    [("pdf", pdf_bytes(["one", "two"])), ("docx", docx_bytes()), ("xlsx", xlsx_bytes()),
     ("csv", b"a,b\n1,2\n"), ("markdown", b"# A\n\ntext\n")],
)
def test_a_parse_over_the_time_limit_is_stopped(kind: str, data: bytes) -> None:
    with pytest.raises(ParseError, match="longer than 1e-09 s .*RAGCHAT_PARSE_TIMEOUT_S"):
        parse_document(kind, data, ParseLimits(timeout_s=1e-9))
