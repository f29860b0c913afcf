"""PDF: one section per page, numbered from 1; page count and time bounded."""

from __future__ import annotations

import io
import logging

import pypdf

from services.ingest.parsers.base import (
    Deadline,
    ParsedDocument,
    ParseError,
    ParseLimits,
    Section,
    one_line,
    tidy,
)

logger = logging.getLogger(__name__)


def parse_pdf(data: bytes, deadline: Deadline, limits: ParseLimits) -> ParsedDocument:
    """Text of every page, in order. Only raises ParseError."""
    if b"%PDF-" not in data[:1024]:
        raise ParseError("could not parse PDF: the file does not start with a PDF header")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError("could not parse PDF: it is password-protected")
        count = len(reader.pages)
        if count > limits.max_pages:
            raise ParseError(
                f"the PDF has {count} pages; the limit is {limits.max_pages} "
                "(RAGCHAT_MAX_PAGES)"
            )
        sections = []
        for number in range(1, count + 1):
            deadline.check()
            text = tidy(reader.pages[number - 1].extract_text() or "")
            if text:
                sections.append(Section(text, page=number))
        title = _pdf_title(reader)
    except ParseError:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types for damaged files
        logger.info("PDF parsing failed: %s: %s", type(exc).__name__, exc)
        reason = str(exc).strip() or type(exc).__name__
        raise ParseError(f"could not parse PDF: {reason}") from exc
    return ParsedDocument(sections=tuple(sections), title=title)


def _pdf_title(reader: pypdf.PdfReader) -> str | None:
    """The metadata title; unreadable metadata is not worth failing the document for."""
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:  # noqa: BLE001
        return None
    return (one_line(str(title)) or None) if title else None
