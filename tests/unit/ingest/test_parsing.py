"""Text extraction from each supported upload kind."""

from __future__ import annotations

import pytest
from reportlab.lib import pdfencrypt

from services.common.errors import InvalidArgument, Unsupported
from services.ingest.parsing import ParseError, parse_document
from tests.unit.ingest.documents import pdf_bytes as _pdf

# --- PDF ---------------------------------------------------------------------


def test_pdf_text_of_every_page_in_order_with_its_title() -> None:
    data = _pdf(["Revenue grew twelve percent.", "", "The aurora was visible."], title="Q3 Report")
    parsed = parse_document("pdf", data)
    assert parsed.title == "Q3 Report"
    assert parsed.text == "Revenue grew twelve percent.\n\nThe aurora was visible."
    assert [(s.page, s.text) for s in parsed.sections] == [
        (1, "Revenue grew twelve percent."), (3, "The aurora was visible.")]


def test_pdf_protected_only_by_an_owner_password_is_readable() -> None:
    owner_only = pdfencrypt.StandardEncryption("", ownerPassword="owner")
    parsed = parse_document("pdf", _pdf(["Readable despite encryption."], encrypt=owner_only))
    assert parsed.text == "Readable despite encryption."


def test_password_protected_pdf_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="could not parse PDF: .*password"):
        parse_document("pdf", _pdf(["Secret."], encrypt="user-password"))


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.98])
def test_truncated_pdf_is_a_parse_error(keep: float) -> None:
    data = _pdf(["Some text on the page."] * 3)
    with pytest.raises(ParseError, match="^could not parse PDF: "):
        parse_document("pdf", data[: int(len(data) * keep)])


@pytest.mark.parametrize(
    "data", [b"", b"not a pdf at all", b"%PDF-1.4\n" + bytes(range(256)) * 20, b"%PDF-"]
)
def test_corrupt_pdf_is_a_parse_error_never_another_exception(data: bytes) -> None:
    with pytest.raises(ParseError, match="^could not parse PDF: "):
        parse_document("pdf", data)


def test_pdf_without_text_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="no extractable text"):
        parse_document("pdf", _pdf(["", ""]))


def test_parse_error_is_reported_to_clients_as_invalid_argument() -> None:
    with pytest.raises(InvalidArgument):
        parse_document("pdf", b"garbage")


# --- HTML --------------------------------------------------------------------

_PAGE = b"""<!DOCTYPE html>
<html><head><title>  Release   Notes </title>
<style>body { color: red; }</style>
<script>window.trackingSecret = "abc";</script></head>
<body>
<nav><a href="/">Home</a> | <a href="/docs">Docs</a></nav>
<h1>Version 2</h1>
<p>Faster   indexing
   of large files.</p>
<p>Fixes &amp; cleanups<br>across the board.</p>
<ul><li>one</li><li>two</li></ul>
<noscript>Please enable JavaScript</noscript>
<!-- internal comment -->
<pre>def f():
    return 1</pre>
</body></html>"""


def test_html_keeps_readable_text_with_paragraph_breaks() -> None:
    parsed = parse_document("html", _PAGE)
    assert parsed.title == "Release Notes"
    assert parsed.text == (
        "Version 2\n\nFaster indexing of large files.\n\nFixes & cleanups\nacross the board."
        "\n\none\ntwo\n\ndef f():\n    return 1"
    )


def test_html_drops_scripts_styles_navigation_and_comments() -> None:
    text = parse_document("html", _PAGE).text
    for hidden in ("trackingSecret", "color: red", "Home", "Docs", "JavaScript", "comment"):
        assert hidden not in text


def test_html_honours_a_declared_legacy_charset() -> None:
    page = b'<html><head><meta charset="iso-8859-1"></head><body><p>caf\xe9</p></body></html>'
    assert parse_document("html", page).text == "caf\u00e9"


def test_html_with_only_script_has_no_extractable_text() -> None:
    with pytest.raises(ParseError, match="no extractable text"):
        parse_document("html", b"<html><script>alert(1)</script><style>p{}</style></html>")


# --- Markdown ----------------------------------------------------------------

_MARKDOWN = b"""# The *Ingest* Guide

Some **bold** text, _emphasis_, a snake_case_name and [the docs](https://example.com/docs).

> A quoted ~~old~~ line.

```python
def f(x):  # **kept as is**
    return x * 2
```

## Next steps
See ![diagram](img/flow.png) and `run_it()`.

[docs]: https://example.com/ref
"""


def test_markdown_is_made_readable() -> None:
    parsed = parse_document("markdown", _MARKDOWN)
    assert parsed.title == "The Ingest Guide"
    assert parsed.text == (
        "The Ingest Guide\n\n"
        "Some bold text, emphasis, a snake_case_name and the docs.\n\n"
        "A quoted old line.\n\n"
        "def f(x):  # **kept as is**\n    return x * 2\n\n"
        "Next steps\n\n"
        "See diagram and run_it()."
    )


def test_markdown_title_from_front_matter_wins() -> None:
    data = b'---\ntitle: "Handbook"\nauthor: me\n---\n# Chapter 1\n\nBody.\n'
    parsed = parse_document("markdown", data)
    assert parsed.title == "Handbook"
    assert parsed.text == "Chapter 1\n\nBody."


def test_markdown_without_heading_has_no_title() -> None:
    assert parse_document("markdown", b"Just a note.\n").title is None


# --- plain text --------------------------------------------------------------


def test_latin1_text_is_decoded_not_rejected() -> None:
    assert parse_document("text", "Caf\u00e9 na\u00efve".encode("latin-1")).text == "Café naïve"


def test_cp1252_smart_quotes_are_decoded() -> None:
    data = "\u201cquoted\u201d \u2013 dash".encode("cp1252")
    assert parse_document("text", data).text == "\u201cquoted\u201d \u2013 dash"


def test_utf8_bom_is_removed_and_utf16_is_read() -> None:
    assert parse_document("text", b"\xef\xbb\xbfhello").text == "hello"
    assert parse_document("text", "h\u00e9llo".encode("utf-16")).text == "h\u00e9llo"


def test_newlines_are_normalised_and_blank_runs_collapsed() -> None:
    data = b"line one\r\nline two   \r\n\r\n\r\n\r\n\rpara two\n\n\n\n"
    parsed = parse_document("text", data)
    assert parsed.text == "line one\nline two\n\npara two"
    assert parsed.title is None


@pytest.mark.parametrize(
    "kind", ["text", "markdown", "html", "pdf", "docx", "pptx", "xlsx", "csv", "json"]
)
@pytest.mark.parametrize("data", [b"", b"  \n\r\n\t  "])
def test_empty_documents_are_a_parse_error(kind: str, data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_document(kind, data)


def test_binary_data_uploaded_as_text_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="binary"):
        parse_document("text", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")


def test_unknown_kind_is_unsupported() -> None:
    with pytest.raises(Unsupported):
        parse_document("odt", b"PK\x03\x04")
