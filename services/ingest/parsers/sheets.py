"""Tabular kinds: XLSX sheets and CSV as Markdown tables, JSON as tables or key paths."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time
from typing import Any

from services.ingest.parsers.base import (
    Deadline,
    ParsedDocument,
    ParseError,
    ParseLimits,
    Section,
    decode,
    markdown_table,
    one_line,
    tidy,
)
from services.ingest.parsers.office import guarded

_CHECK_EVERY = 1000  # rows between deadline checks


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime) and value.time() == time():
        return value.date().isoformat()
    if isinstance(value, (datetime, date, time)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return str(value)


def _table(rows: Iterable[Iterable[Any]], deadline: Deadline) -> str:
    """Non-empty rows as one Markdown table, trailing empty columns dropped."""
    kept: list[list[str]] = []
    width = 0
    for index, row in enumerate(rows):
        if index % _CHECK_EVERY == 0:
            deadline.check()
        cells = [one_line(_cell(v)) for v in row]
        used = max((i + 1 for i, c in enumerate(cells) if c), default=0)
        if used:
            kept.append(cells)
            width = max(width, used)
    return markdown_table([row[:width] for row in kept])


def _parse_xlsx(data: bytes, deadline: Deadline, limits: ParseLimits) -> ParsedDocument:
    import openpyxl  # deferred: only needed for this kind

    # read_only streams rows from the archive instead of building every cell object.
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        title = one_line(book.properties.title or "") or None
        sections = []
        for sheet in book.worksheets:
            text = _table(sheet.iter_rows(values_only=True), deadline)
            if text:
                sections.append(Section(text, heading=sheet.title))
    finally:
        book.close()
    return ParsedDocument(sections=tuple(sections), title=title)


parse_xlsx = guarded("XLSX", _parse_xlsx)


def parse_csv(data: bytes, deadline: Deadline) -> ParsedDocument:
    text = decode(data)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:16384], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        table = _table(csv.reader(io.StringIO(text, newline=""), dialect), deadline)
    except csv.Error as exc:
        raise ParseError(f"could not parse CSV: {exc}") from exc
    return ParsedDocument(sections=(Section(table),) if table else ())


# --- JSON --------------------------------------------------------------------


def _is_records(value: Any) -> bool:
    """A non-empty list of objects whose values are all scalars: a table."""
    return (
        isinstance(value, list) and bool(value)
        and all(isinstance(item, dict) and item for item in value)
        and all(not isinstance(v, (dict, list)) for item in value for v in item.values())
    )


def _records_table(records: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(key for record in records for key in record))
    rows = [[_scalar(r.get(c)) if c in r else "" for c in columns] for r in records]
    return markdown_table([columns, *rows])


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _flatten(value: Any, path: str) -> Iterator[str]:
    """Paragraphs of `a > b[0]: value` lines; lists of flat objects become tables."""
    if _is_records(value):
        # Blank lines around it keep the table a paragraph of its own.
        yield (f"\n{path}:\n\n" if path else "\n") + _records_table(value) + "\n"
    elif isinstance(value, dict):
        for key, item in value.items():
            # " > ", not ".": full-text search reads "a.b" as one host-name-like token.
            yield from _flatten(item, f"{path} > {key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{path}[{index}]")
    else:
        yield f"{path}: {_scalar(value)}" if path else _scalar(value)


def parse_json(data: bytes, deadline: Deadline) -> ParsedDocument:
    """Each top-level key becomes a section headed by the key."""
    try:
        value = json.loads(decode(data))
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"could not parse JSON: {exc}") from exc
    items = value.items() if isinstance(value, dict) else [("", value)]
    sections = []
    try:
        for key, item in items:
            deadline.check()
            text = tidy("\n".join(_flatten(item, str(key))))
            if text.strip():
                sections.append(Section(text, heading=str(key)))
    except RecursionError as exc:
        raise ParseError("could not parse JSON: nested too deeply") from exc
    return ParsedDocument(sections=tuple(sections))
