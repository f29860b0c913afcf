"""Raw upload bytes -> plain text (plus a title when the document names one)."""

from __future__ import annotations

import codecs
import io
import logging
import re
from dataclasses import dataclass

import pypdf
from bs4 import BeautifulSoup
from bs4.element import Tag

from services.common.errors import InvalidArgument, Unsupported

logger = logging.getLogger(__name__)


class ParseError(InvalidArgument):
    """The upload is of a supported kind but its content cannot be read."""


@dataclass(frozen=True)
class ParsedDocument:
    """Readable text of a document and the title it declares, if any."""

    text: str
    title: str | None = None


def parse_document(kind: str, data: bytes) -> ParsedDocument:
    """Extract text from bytes of a kind from services.common.filetypes.

    Raises ParseError for unreadable content or a document with no text, and
    Unsupported for an unknown kind.
    """
    parsers = {"text": _parse_text, "markdown": _parse_markdown, "html": _parse_html}
    if kind == "pdf":
        parsed = _parse_pdf(data)
    elif kind in parsers:
        parsed = parsers[kind](data)
    else:
        raise Unsupported(f"cannot parse documents of kind {kind!r}")
    if not parsed.text.strip():
        raise ParseError(f"no extractable text in the {kind} document")
    return parsed


# --- plain text -------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_BLANK_RUNS = re.compile(r"\n{3,}")


def _tidy(text: str) -> str:
    """Normalise newlines, drop control characters, collapse runs of blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n").replace("\v", "\n")
    text = _CONTROL.sub("", text.replace("\ufeff", ""))
    text = _TRAILING_SPACE.sub("\n", text + "\n")
    return _BLANK_RUNS.sub("\n\n", text).strip()


def _decode(data: bytes) -> str:
    """UTF-8 (BOM optional), UTF-16 with a BOM, else Windows-1252 / Latin-1."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    if b"\x00" in data:
        raise ParseError("the file looks binary, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # never fails: every byte is a character


def _parse_text(data: bytes) -> ParsedDocument:
    return ParsedDocument(text=_tidy(_decode(data)))


# --- markdown ---------------------------------------------------------------

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_RULE = re.compile(r"^\s{0,3}(?:=+|-{2,}|(?:[-*_]\s*){3,})\s*$")
_LINK_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+")
_QUOTE = re.compile(r"^(\s{0,3}>\s?)+")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_INLINE = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # image -> alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # link -> its text
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # reference link
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),  # autolink
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # strong
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),  # *em*
    (re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"), r"\1"),  # _em_, not snake_case
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),  # strikethrough
]


def _strip_inline(line: str) -> str:
    """Remove emphasis and link markup outside code spans; unwrap code spans."""
    out, pos = [], 0
    for match in _CODE_SPAN.finditer(line):
        out.append(_strip_emphasis(line[pos : match.start()]))
        out.append(match.group(2).strip())
        pos = match.end()
    out.append(_strip_emphasis(line[pos:]))
    return "".join(out)


def _strip_emphasis(text: str) -> str:
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return text


def _front_matter(lines: list[str]) -> tuple[list[str], str | None]:
    """Drop a leading YAML front-matter block; return its `title:` if present."""
    if not lines or lines[0].strip() != "---":
        return lines, None
    for end in range(1, min(len(lines), 100)):
        if lines[end].strip() in ("---", "..."):
            title = None
            for line in lines[1:end]:
                key, _, value = line.partition(":")
                if key.strip().lower() == "title" and value.strip():
                    title = value.strip().strip("\"'")
            return lines[end + 1 :], title
    return lines, None


def _parse_markdown(data: bytes) -> ParsedDocument:
    lines, title = _front_matter(_tidy(_decode(data)).split("\n"))
    out: list[str] = []
    fence: str | None = None
    for line in lines:
        opener = _FENCE.match(line)
        if fence is not None:
            if opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
                fence = None
            else:
                out.append(line)  # code is kept verbatim
            continue
        if opener:
            fence = opener.group(1)
            continue
        if _LINK_DEF.match(line):
            continue
        if _RULE.match(line):
            if line.lstrip().startswith("=") and title is None and out and out[-1].strip():
                title = out[-1].strip()  # setext level-1 heading
            out.append("")
            continue
        heading = _ATX.match(line)
        if heading:
            text = _strip_inline(heading.group(2))
            if title is None and len(heading.group(1)) == 1 and text:
                title = text
            out.extend(["", text, ""])
            continue
        out.append(_strip_inline(_QUOTE.sub("", line)))
    return ParsedDocument(text=_tidy("\n".join(out)), title=title or None)


# --- HTML -------------------------------------------------------------------

# <head> itself is kept: html.parser nests the content after an unclosed <head> inside it.
_DROPPED = ["script", "style", "nav", "noscript", "template", "title"]
_PARAGRAPH_TAGS = [
    "p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote",
    "pre", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table", "figure",
    "figcaption", "address", "details", "summary", "form", "fieldset", "hr",
]  # fmt: skip
_LINE_TAGS = ["li", "tr", "dt", "dd", "caption"]
_CELL_TAGS = ["td", "th"]
# Private-use sentinels survive whitespace collapsing.
_PARA, _LINE, _SPACE = "\ue000", "\ue001", "\ue002"
_BREAKS = re.compile(rf"[ {_PARA}{_LINE}]*[{_PARA}{_LINE}][ {_PARA}{_LINE}]*")


def _html_title(soup: BeautifulSoup) -> str | None:
    for tag in (soup.title, soup.find("h1")):
        if isinstance(tag, Tag):
            text = " ".join(tag.get_text(" ").split())
            if text:
                return text
    return None


def _parse_html(data: bytes) -> ParsedDocument:
    soup = BeautifulSoup(data, "html.parser")
    title = _html_title(soup)
    for tag in soup.find_all(_DROPPED):
        tag.decompose()
    for pre in soup.find_all("pre"):
        for string in pre.find_all(string=True):
            string.replace_with(
                string.replace("\t", "    ").replace(" ", _SPACE).replace("\n", _LINE)
            )
    for br in soup.find_all("br"):
        br.replace_with(_LINE)
    for tags, marker in ((_PARAGRAPH_TAGS, _PARA), (_LINE_TAGS, _LINE), (_CELL_TAGS, " ")):
        for tag in soup.find_all(tags):
            tag.insert_before(marker)
            tag.insert_after(marker)
    text = " ".join(soup.get_text().split())
    text = _BREAKS.sub(lambda m: "\n\n" if _PARA in m.group() else "\n", text)
    text = text.replace(_SPACE, " ")
    return ParsedDocument(text=_tidy(text), title=title)


# --- PDF --------------------------------------------------------------------


def _parse_pdf(data: bytes) -> ParsedDocument:
    """Text of every page, pages separated by a blank line. Only raises ParseError."""
    if b"%PDF-" not in data[:1024]:
        raise ParseError("could not parse PDF: the file does not start with a PDF header")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError("could not parse PDF: it is password-protected")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = _pdf_title(reader)
    except ParseError:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types for damaged files
        logger.info("PDF parsing failed: %s: %s", type(exc).__name__, exc)
        reason = str(exc).strip() or type(exc).__name__
        raise ParseError(f"could not parse PDF: {reason}") from exc
    text = "\n\n".join(_tidy(page) for page in pages if page.strip())
    return ParsedDocument(text=text, title=title)


def _pdf_title(reader: pypdf.PdfReader) -> str | None:
    """The metadata title; unreadable metadata is not worth failing the document for."""
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:  # noqa: BLE001
        return None
    return (" ".join(str(title).split()) or None) if title else None
