"""DOCX and PPTX, after the zip container has passed the decompression limit."""

from __future__ import annotations

import io
import logging
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from services.ingest.parsers.base import (
    Deadline,
    ParsedDocument,
    ParseError,
    ParseLimits,
    Section,
    SectionBuilder,
    markdown_table,
    one_line,
    tidy,
)

logger = logging.getLogger(__name__)

_MAX_ENTRIES = 10_000
_READ = 1 << 20


def check_zip(data: bytes, limits: ParseLimits, deadline: Deadline, label: str) -> None:
    """Refuse a zip whose declared or actual decompressed size exceeds the limit.

    Every member is inflated once, 1 MiB at a time, so a member lying about its size
    is caught without ever holding more than one buffer.
    """
    limit = limits.max_decompressed_bytes
    too_big = (f"the {label} file decompresses to more than {limit / 2**20:g} MB "
               "(limit RAGCHAT_MAX_DECOMPRESSED_MB)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > _MAX_ENTRIES:
                raise ParseError(f"the archive holds {len(infos)} files; at most "
                                 f"{_MAX_ENTRIES} are read")
            if sum(info.file_size for info in infos) > limit:
                raise ParseError(too_big)
            total = 0
            for info in infos:
                deadline.check()
                with archive.open(info) as member:
                    while chunk := member.read(_READ):
                        total += len(chunk)
                        if total > limit:
                            raise ParseError(too_big)
    except ParseError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
            ValueError, OSError) as exc:
        raise ParseError(f"could not parse {label}: damaged zip container ({exc})") from exc


def guarded(label: str, parse: Callable[[bytes, Deadline, ParseLimits], ParsedDocument]
            ) -> Callable[[bytes, Deadline, ParseLimits], ParsedDocument]:
    """`parse` behind the zip check, with library errors turned into ParseError."""

    def run(data: bytes, deadline: Deadline, limits: ParseLimits) -> ParsedDocument:
        check_zip(data, limits, deadline, label)
        try:
            return parse(data, deadline, limits)
        except ParseError:
            raise
        except Exception as exc:  # noqa: BLE001 - the libraries raise many types
            logger.info("%s parsing failed: %s: %s", label, type(exc).__name__, exc)
            reason = one_line(str(exc)) or type(exc).__name__
            raise ParseError(f"could not parse {label}: {reason}") from exc

    return run


# --- DOCX --------------------------------------------------------------------


def _heading_level(paragraph: Any) -> int | None:
    """1-9 for a "Heading N" style (or one based on it), 0 for "Title", else None."""
    style = paragraph.style
    for _ in range(5):
        if style is None:
            return None
        name = str(style.name or "")
        if name == "Title":
            return 0
        if name.startswith("Heading ") and name[8:].isdigit():
            return int(name[8:])
        style = style.base_style
    return None


def _docx_table(table: Any) -> str:
    rows = []
    for row in table.rows:
        cells, previous = [], None
        for cell in row.cells:
            # A merged cell comes back once per grid column it spans; show its text once.
            cells.append("" if cell._tc is previous else cell.text)
            previous = cell._tc
        rows.append(cells)
    return markdown_table(rows)


def _parse_docx(data: bytes, deadline: Deadline, limits: ParseLimits) -> ParsedDocument:
    import docx  # deferred: only needed for this kind
    from docx.table import Table

    document = docx.Document(io.BytesIO(data))
    title = one_line(document.core_properties.title or "") or None
    builder = SectionBuilder()
    for index, block in enumerate(document.iter_inner_content()):
        if index % 200 == 0:
            deadline.check()
        if isinstance(block, Table):
            builder.paragraph(_docx_table(block))
            continue
        text = tidy(block.text)
        level = _heading_level(block)
        if level is None or not text:
            builder.paragraph(text)
        elif level == 0:
            title = title or one_line(text)
            builder.paragraph(text)
        else:
            builder.heading(level, one_line(text))
    builder.flush()
    return ParsedDocument(sections=tuple(builder.sections), title=title)


# --- PPTX --------------------------------------------------------------------


def _shape_texts(shapes: Any, skip: int | None) -> Iterator[str]:
    for shape in shapes:
        if shape.shape_id == skip:
            continue
        if getattr(shape, "shapes", None) is not None and shape.shape_type == 6:  # group
            yield from _shape_texts(shape.shapes, skip)
        elif getattr(shape, "has_table", False) and shape.has_table:
            yield markdown_table([[c.text for c in row.cells] for row in shape.table.rows])
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            yield tidy(shape.text_frame.text)


def _parse_pptx(data: bytes, deadline: Deadline, limits: ParseLimits) -> ParsedDocument:
    from pptx import Presentation  # deferred: only needed for this kind

    presentation = Presentation(io.BytesIO(data))
    slides = list(presentation.slides)
    if len(slides) > limits.max_pages:
        raise ParseError(f"the presentation has {len(slides)} slides; the limit is "
                         f"{limits.max_pages} (RAGCHAT_MAX_PAGES)")
    title = one_line(presentation.core_properties.title or "") or None
    sections = []
    for number, slide in enumerate(slides, start=1):
        deadline.check()
        title_shape = slide.shapes.title
        heading = one_line(title_shape.text_frame.text) if title_shape is not None else ""
        parts = [heading] if heading else []
        parts.extend(_shape_texts(slide.shapes, title_shape.shape_id if title_shape else None))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = tidy(slide.notes_slide.notes_text_frame.text)
            parts.append(f"Notes: {notes}" if notes else "")
        text = tidy("\n\n".join(p for p in parts if p))
        if text:
            sections.append(Section(text, page=number, heading=heading))
        title = title or heading or None
    return ParsedDocument(sections=tuple(sections), title=title)


parse_docx = guarded("DOCX", _parse_docx)
parse_pptx = guarded("PPTX", _parse_pptx)
