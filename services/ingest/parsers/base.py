"""Types and helpers every parser shares: sections, limits, errors, text clean-up."""

from __future__ import annotations

import codecs
import re
import time
from dataclasses import dataclass

from services.common.errors import InvalidArgument


class ParseError(InvalidArgument):
    """The upload is of a supported kind but its content cannot be read (or is too big)."""


@dataclass(frozen=True, slots=True)
class Section:
    """A run of text from one place in a document: a page, a slide, or under one heading.

    `page` is 1-based (PDF page, PPTX slide) or None; `heading` is the heading path,
    e.g. "Benefits > Leave", or "" when the text sits under no heading.
    """

    text: str
    page: int | None = None
    heading: str = ""


@dataclass(frozen=True)
class ParsedDocument:
    """The sections of a document, in reading order, and the title it declares, if any."""

    sections: tuple[Section, ...]
    title: str | None = None

    @property
    def text(self) -> str:
        """All text, sections separated by a blank line."""
        return "\n\n".join(s.text for s in self.sections if s.text)


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on what one document may cost to parse; past one, parsing raises ParseError."""

    max_pages: int = 2000
    max_decompressed_bytes: int = 200 * 1024 * 1024
    timeout_s: float = 120.0


class Deadline:
    """Wall-clock budget of one parse, checked between pages, rows and sections."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout = timeout_s
        self._end = time.monotonic() + timeout_s

    def check(self) -> None:
        if time.monotonic() > self._end:
            raise ParseError(
                f"parsing took longer than {self._timeout:g} s (limit RAGCHAT_PARSE_TIMEOUT_S)"
            )


_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_BLANK_RUNS = re.compile(r"\n{3,}")


def tidy(text: str) -> str:
    """Normalise newlines, drop control characters, collapse runs of blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n").replace("\v", "\n")
    text = _CONTROL.sub("", text.replace("\ufeff", ""))
    text = _TRAILING_SPACE.sub("\n", text + "\n")
    return _BLANK_RUNS.sub("\n\n", text).strip()


def decode(data: bytes) -> str:
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


def one_line(text: str) -> str:
    """Whitespace runs (newlines included) collapsed to single spaces."""
    return " ".join(text.split())


def markdown_table(rows: list[list[str]]) -> str:
    """Rows of cell texts (the first is the header) as a Markdown table; "" if all blank."""
    cleaned = [[_cell(c) for c in row] for row in rows]
    cleaned = [row for row in cleaned if any(row)]
    if not cleaned:
        return ""
    width = max(len(row) for row in cleaned)
    lines = []
    for index, row in enumerate(cleaned):
        lines.append("| " + " | ".join(row + [""] * (width - len(row))) + " |")
        if index == 0:
            lines.append("|" + " --- |" * width)
    return "\n".join(lines)


def _cell(text: str) -> str:
    return one_line(text).replace("|", "\\|")


class SectionBuilder:
    """Collects paragraphs into sections, starting a new one at each heading."""

    def __init__(self, page: int | None = None) -> None:
        self.sections: list[Section] = []
        self._page = page
        self._path: list[tuple[int, str]] = []
        self._paragraphs: list[str] = []
        self._body = False

    def heading(self, level: int, text: str) -> None:
        """Close the current section; the heading opens the next one (as its first line).

        A heading directly followed by a deeper one stays with it: no section of a bare
        heading line.
        """
        if self._body or not self._path or level <= self._path[-1][0]:
            self.flush()
        while self._path and self._path[-1][0] >= level:
            self._path.pop()
        self._path.append((level, text))
        self._paragraphs.append(text)
        self._body = False

    def paragraph(self, text: str) -> None:
        if text.strip():
            self._paragraphs.append(text)
            self._body = True

    def flush(self) -> None:
        text = tidy("\n\n".join(self._paragraphs))
        if text:
            path = " > ".join(t for _, t in self._path)
            self.sections.append(Section(text, self._page, path))
        self._paragraphs = []
        self._body = False
