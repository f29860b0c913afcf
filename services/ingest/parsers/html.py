"""HTML: readable text split into sections at h1-h6, tables as Markdown."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup
from bs4.element import NavigableString, Tag

from services.ingest.parsers.base import (
    Deadline,
    ParsedDocument,
    SectionBuilder,
    markdown_table,
    one_line,
)

# <head> itself is kept: html.parser nests the content after an unclosed <head> inside it.
_DROPPED = ["script", "style", "nav", "noscript", "template", "title", "iframe", "object", "embed"]
_PARAGRAPH_TAGS = [
    "p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote",
    "pre", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table", "figure",
    "figcaption", "address", "details", "summary", "form", "fieldset", "hr",
]  # fmt: skip
_HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"]
_LINE_TAGS = ["li", "tr", "dt", "dd", "caption"]
_CELL_TAGS = ["td", "th"]
# Private-use sentinels survive whitespace collapsing.
_PARA, _LINE, _SPACE, _HEAD, _TABLE = "\ue000", "\ue001", "\ue002", "\ue003", "\ue004"
_BREAKS = re.compile(rf"[ {_PARA}{_LINE}]*[{_PARA}{_LINE}][ {_PARA}{_LINE}]*")
_PLACEHOLDER = re.compile(rf"([{_HEAD}{_TABLE}])(\d+)\1")


def _html_title(soup: BeautifulSoup) -> str | None:
    for tag in (soup.title, soup.find("h1")):
        if isinstance(tag, Tag):
            text = one_line(tag.get_text(" "))
            if text:
                return text
    return None


def _table_rows(table: Tag) -> list[list[str]]:
    """Cell texts of the table's own rows (nested tables are flattened into their cell)."""
    rows = []
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is not table:
            continue
        row: list[str] = []
        for cell in tr.find_all(_CELL_TAGS, recursive=False):
            row.append(cell.get_text(" "))
            span = str(cell.get("colspan") or "1")
            row.extend([""] * (min(int(span), 50) - 1 if span.isdigit() else 0))
        rows.append(row)
    return rows


def _placeholders(soup: BeautifulSoup) -> tuple[list[str], list[tuple[int, str]]]:
    """Swap tables for Markdown placeholders and mark headings; returns both lists."""
    tables: list[str] = []
    for table in soup.find_all("table"):
        if table.find_parent("table") is not None or table.parent is None:
            continue
        caption = table.find("caption")
        text = markdown_table(_table_rows(table))
        marker = f"{_PARA}{_TABLE}{len(tables)}{_TABLE}{_PARA}" if text else _PARA
        if isinstance(caption, Tag) and one_line(caption.get_text(" ")):
            marker = f"{_PARA}{one_line(caption.get_text(' '))}{marker}"
        tables.append(text)
        table.replace_with(NavigableString(marker))
    headings: list[tuple[int, str]] = []
    for tag in soup.find_all(_HEADINGS):
        text = one_line(tag.get_text(" "))
        if text:
            tag.insert_before(f"{_PARA}{_HEAD}{len(headings)}{_HEAD}")
            headings.append((int(tag.name[1]), text))
    return tables, headings


def parse_html(data: bytes, deadline: Deadline) -> ParsedDocument:
    soup = BeautifulSoup(data, "html.parser")
    deadline.check()
    title = _html_title(soup)
    for tag in soup.find_all(_DROPPED):
        tag.decompose()
    tables, headings = _placeholders(soup)
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
    deadline.check()
    text = " ".join(soup.get_text().split())
    text = _BREAKS.sub(lambda m: "\n\n" if _PARA in m.group() else "\n", text)
    text = text.replace(_SPACE, " ")
    builder = SectionBuilder()
    pos = 0
    for match in _PLACEHOLDER.finditer(text):
        builder.paragraph(text[pos : match.start()])
        index = int(match.group(2))
        if match.group(1) == _TABLE:
            builder.paragraph(tables[index])
        else:
            builder.heading(*headings[index])
            # The heading's own text follows the marker; the builder already has it.
            pos = _skip_heading_text(text, match.end(), headings[index][1])
            continue
        pos = match.end()
    builder.paragraph(text[pos:])
    builder.flush()
    return ParsedDocument(sections=tuple(builder.sections), title=title)


def _skip_heading_text(text: str, start: int, heading: str) -> int:
    """Position after the heading's text that follows its marker (unchanged if absent)."""
    rest = text[start:].lstrip()
    if one_line(rest[: len(heading) * 2]).startswith(heading):
        end = rest.find("\n\n")
        candidate = rest if end < 0 else rest[:end]
        if one_line(candidate) == heading:
            return len(text) - len(rest) + len(candidate)
    return start
