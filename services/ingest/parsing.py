"""Raw upload bytes -> sections of text (with page or heading path) and a title.

The parsers live in services.ingest.parsers; this module picks one by kind, lets
the bytes correct a wrong kind, and enforces the parse limits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from services.common.errors import Unsupported
from services.common.filetypes import sniff_kind
from services.ingest.parsers.base import (
    Deadline,
    ParsedDocument,
    ParseError,
    ParseLimits,
    Section,
)
from services.ingest.parsers.html import parse_html
from services.ingest.parsers.office import parse_docx, parse_pptx
from services.ingest.parsers.pdf import parse_pdf
from services.ingest.parsers.sheets import parse_csv, parse_json, parse_xlsx
from services.ingest.parsers.text import parse_markdown, parse_text

__all__ = ["ParseError", "ParseLimits", "ParsedDocument", "Section", "parse_document"]

logger = logging.getLogger(__name__)

_Parser = Callable[[bytes, Deadline], ParsedDocument]
_LimitedParser = Callable[[bytes, Deadline, ParseLimits], ParsedDocument]

_PARSERS: dict[str, _Parser] = {
    "text": parse_text,
    "markdown": parse_markdown,
    "html": parse_html,
    "csv": parse_csv,
    "json": parse_json,
}
_LIMITED_PARSERS: dict[str, _LimitedParser] = {
    "pdf": parse_pdf,
    "docx": parse_docx,
    "pptx": parse_pptx,
    "xlsx": parse_xlsx,
}


def parse_document(kind: str, data: bytes, limits: ParseLimits | None = None) -> ParsedDocument:
    """Sections of text from bytes of a kind from services.common.filetypes.

    Bytes that are plainly a PDF or an Office package are parsed as such whatever
    `kind` says. Raises ParseError for unreadable content, a document with no text,
    or one past a limit (the message names the setting), and Unsupported for an
    unknown kind.
    """
    limits = limits or ParseLimits()
    sniffed = sniff_kind(data)
    if sniffed is not None and sniffed != kind:
        logger.info("content of a %s upload is %s; parsing it as %s", kind, sniffed, sniffed)
        kind = sniffed
    deadline = Deadline(limits.timeout_s)
    if kind in _LIMITED_PARSERS:
        parsed = _LIMITED_PARSERS[kind](data, deadline, limits)
    elif kind in _PARSERS:
        parsed = _PARSERS[kind](data, deadline)
    else:
        raise Unsupported(f"cannot parse documents of kind {kind!r}")
    if not any(section.text.strip() for section in parsed.sections):
        raise ParseError(f"no extractable text in the {kind} document")
    return parsed
