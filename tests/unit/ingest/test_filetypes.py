"""Which uploads are accepted, and as what."""

from __future__ import annotations

import grpc
import pytest

from services.common.errors import Unsupported
from services.common.filetypes import SUPPORTED_EXTENSIONS, content_type_for, detect_kind


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
        ("slides.docx", "application/octet-stream"),
        ("folder.pdf/", None),
    ],
)
def test_unknown_types_are_refused_with_the_supported_list(
    filename: str, content_type: str | None
) -> None:
    with pytest.raises(Unsupported) as info:
        detect_kind(filename, content_type)
    message = str(info.value)
    for extension in (".txt", ".md", ".markdown", ".html", ".htm", ".pdf"):
        assert extension in message
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_supported_extensions_are_exactly_the_documented_ones() -> None:
    assert set(SUPPORTED_EXTENSIONS) == {".txt", ".md", ".markdown", ".html", ".htm", ".pdf"}


def test_content_type_for_round_trips_through_detect_kind() -> None:
    assert content_type_for("pdf") == "application/pdf"
    assert content_type_for("text") == "text/plain"
    for extension, kind in SUPPORTED_EXTENSIONS.items():
        assert detect_kind(f"file{extension}", None) == kind
        assert detect_kind("no-extension", content_type_for(kind)) == kind


def test_content_type_for_an_unknown_kind_is_refused() -> None:
    with pytest.raises(Unsupported):
        content_type_for("docx")
