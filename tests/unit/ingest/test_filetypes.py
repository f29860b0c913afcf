"""Which uploads are accepted, and as what."""

from __future__ import annotations

import grpc
import pytest

from services.common.errors import Unsupported
from services.common.filetypes import (
    SUPPORTED_EXTENSIONS,
    content_type_for,
    detect_kind,
    sniff_kind,
)
from tests.unit.ingest.documents import docx_bytes, pdf_bytes, pptx_bytes, xlsx_bytes, zip_bytes


@pytest.mark.parametrize(
    ("filename", "kind"),
    [
        ("notes.txt", "text"),
        ("README.md", "markdown"),
        ("guide.markdown", "markdown"),
        ("index.html", "html"),
        ("old.HTM", "html"),
        ("Report.PDF", "pdf"),
        ("dir/sub/paper.pdf", "pdf"),
        ("C:\\Users\\me\\paper.pdf", "pdf"),
        ("Letter.DOCX", "docx"),
        ("deck.pptx", "pptx"),
        ("budget.xlsx", "xlsx"),
        ("export.csv", "csv"),
        ("data.json", "json"),
    ],
)
def test_kind_follows_the_extension_case_insensitively(filename: str, kind: str) -> None:
    assert detect_kind(filename, None) == kind


def test_extension_wins_over_a_conflicting_content_type() -> None:
    assert detect_kind("notes.md", "text/plain") == "markdown"
    assert detect_kind("paper.pdf", "application/octet-stream") == "pdf"


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("application/pdf", "pdf"),
        ("Text/HTML; charset=utf-8", "html"),
        ("text/markdown", "markdown"),
        ("text/plain;charset=ISO-8859-1", "text"),
        ("text/csv", "csv"),
        ("application/json", "json"),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    ],
)
def test_content_type_is_used_when_the_name_has_no_extension(
    content_type: str, kind: str
) -> None:
    assert detect_kind("upload", content_type) == kind
    with pytest.raises(Unsupported):
        detect_kind("tool.exe", content_type)


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("photo.png", "image/png"),
        ("archive.tar.gz", None),
        ("upload", ""),
        ("slides.ppt", "application/vnd.ms-powerpoint"),
        ("macro.docm", None),
        ("folder.pdf/", None),
    ],
)
def test_unknown_types_are_refused_with_the_supported_list(
    filename: str, content_type: str | None
) -> None:
    with pytest.raises(Unsupported) as info:
        detect_kind(filename, content_type)
    message = str(info.value)
    for extension in (".txt", ".md", ".pdf", ".docx", ".pptx", ".xlsx", ".csv", ".json"):
        assert extension in message
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_supported_extensions_are_exactly_the_documented_ones() -> None:
    assert set(SUPPORTED_EXTENSIONS) == {
        ".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".pptx", ".xlsx", ".csv",
        ".json",
    }  # fmt: skip


def test_content_type_for_round_trips_through_detect_kind() -> None:
    assert content_type_for("pdf") == "application/pdf"
    assert content_type_for("text") == "text/plain"
    for extension, kind in SUPPORTED_EXTENSIONS.items():
        assert detect_kind(f"file{extension}", None) == kind
        assert detect_kind("no-extension", content_type_for(kind)) == kind


def test_content_type_for_an_unknown_kind_is_refused() -> None:
    with pytest.raises(Unsupported):
        content_type_for("doc")


# --- content decides -----------------------------------------------------------


def test_office_packages_and_pdfs_are_recognised_by_their_bytes() -> None:
    assert sniff_kind(docx_bytes()) == "docx"
    assert sniff_kind(pptx_bytes()) == "pptx"
    assert sniff_kind(xlsx_bytes()) == "xlsx"
    assert sniff_kind(pdf_bytes(["Hello."])) == "pdf"
    assert sniff_kind(b"plain words") is None
    assert sniff_kind(zip_bytes({"notes.txt": b"not an office file"})) is None


def test_bytes_win_over_a_misleading_name() -> None:
    assert detect_kind("report.docx", None, pptx_bytes()) == "pptx"
    assert detect_kind("scan", "application/octet-stream", pdf_bytes(["Hi."])) == "pdf"
    assert detect_kind("notes.txt", "text/plain", xlsx_bytes()) == "xlsx"
    assert detect_kind("notes.txt", "text/plain", b"just text") == "text"


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("report.docx", b"plain text renamed"),
        ("paper.pdf", b"<html>not a pdf</html>"),
        ("sheet.xlsx", zip_bytes({"a.txt": b"a zip, but no workbook"})),
    ],
)
def test_a_binary_type_whose_bytes_disagree_is_refused(filename: str, data: bytes) -> None:
    with pytest.raises(Unsupported, match="content does not match"):
        detect_kind(filename, None, data)


def test_upload_validation_accepts_the_new_types_and_checks_their_bytes() -> None:
    from services.common.errors import InvalidArgument, TooLarge
    from services.common.uploads import validate_upload

    data = docx_bytes()
    assert validate_upload("handbook.docx", "", len(data), 10**7, data) == "docx"
    assert validate_upload("sheet.xlsx", "", 10, 10**7) == "xlsx"  # name only: no bytes
    assert validate_upload("rows.csv", "text/csv", 10, 10**7, b"a,b\n1,2\n") == "csv"
    with pytest.raises(Unsupported):
        validate_upload("handbook.docx", "", 5, 10**7, b"hello")
    with pytest.raises(Unsupported):
        validate_upload("movie.mp4", "", 10**8, 10**7)  # 415 before 413
    with pytest.raises(TooLarge):
        validate_upload("huge.pptx", "", 10**8, 10**7)
    with pytest.raises(InvalidArgument):
        validate_upload("empty.json", "", 0, 10**7, b"")
