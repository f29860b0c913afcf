"""The upload types ragchat accepts, defined once for the gateway and the ingest service."""

from __future__ import annotations

import codecs
import io
import posixpath
import zipfile
from collections.abc import Mapping
from types import MappingProxyType

from services.common.errors import Unsupported

KINDS: tuple[str, ...] = (
    "text", "markdown", "html", "pdf", "docx", "pptx", "xlsx", "csv", "json",
)  # fmt: skip

# File extension (lower case, with the dot) -> kind.
SUPPORTED_EXTENSIONS: Mapping[str, str] = MappingProxyType(
    {
        ".txt": "text",
        ".md": "markdown",
        ".markdown": "markdown",
        ".html": "html",
        ".htm": "html",
        ".pdf": "pdf",
        ".docx": "docx",
        ".pptx": "pptx",
        ".xlsx": "xlsx",
        ".csv": "csv",
        ".json": "json",
    }
)

_OOXML = "application/vnd.openxmlformats-officedocument."
# Canonical content type of each kind, as stored with the document.
_CONTENT_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "text": "text/plain",
        "markdown": "text/markdown",
        "html": "text/html",
        "pdf": "application/pdf",
        "docx": _OOXML + "wordprocessingml.document",
        "pptx": _OOXML + "presentationml.presentation",
        "xlsx": _OOXML + "spreadsheetml.sheet",
        "csv": "text/csv",
        "json": "application/json",
    }
)

# Content types accepted as a fallback when the file name says nothing.
_KNOWN_CONTENT_TYPES: Mapping[str, str] = MappingProxyType(
    {
        **{content_type: kind for kind, content_type in _CONTENT_TYPES.items()},
        "text/x-markdown": "markdown",
        "application/xhtml+xml": "html",
        "application/x-pdf": "pdf",
        "application/csv": "csv",
        "text/json": "json",
    }
)

# Kinds recognised by their bytes: a file of one of these kinds whose bytes say
# otherwise is refused, and bytes of one of them win over the file name.
BINARY_KINDS: tuple[str, ...] = ("pdf", "docx", "pptx", "xlsx")

# OOXML packages: (main part content type, main part name) of each kind.
_OOXML_MAIN: Mapping[str, tuple[bytes, str]] = MappingProxyType(
    {
        "docx": (b"wordprocessingml.document.main+xml", "word/document.xml"),
        "pptx": (b"presentationml.presentation.main+xml", "ppt/presentation.xml"),
        "xlsx": (b"spreadsheetml.sheet.main+xml", "xl/workbook.xml"),
    }
)
_MAX_CONTENT_TYPES_BYTES = 1 << 20


def sniff_kind(data: bytes) -> str | None:
    """The kind the bytes themselves declare ("pdf", "docx", "pptx", "xlsx"), else None.

    PDF: a `%PDF-` header (after optional whitespace). DOCX/PPTX/XLSX: a zip holding
    `[Content_Types].xml` that declares the kind's main part, which must exist.
    """
    if data[:1024].lstrip().startswith(b"%PDF-"):
        return "pdf"
    if not data.startswith(b"PK\x03\x04"):
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            info = archive.getinfo("[Content_Types].xml")
            with archive.open(info) as member:
                declared = member.read(_MAX_CONTENT_TYPES_BYTES)
    except (KeyError, zipfile.BadZipFile, OSError, RuntimeError, ValueError, EOFError):
        return None
    except Exception:  # noqa: BLE001 - zlib and friends; an unreadable zip is no OOXML
        return None
    for kind, (content_type, part) in _OOXML_MAIN.items():
        if content_type in declared and part in names:
            return kind
    return None


def _binary(data: bytes) -> bool:
    """Bytes no text kind can be: a NUL outside UTF-16 (which starts with its BOM)."""
    return b"\x00" in data and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))


def _extension(filename: str) -> str:
    """The lower-case extension of the last path component ('' when there is none)."""
    base = posixpath.basename(filename.replace("\\", "/")).strip()
    return posixpath.splitext(base)[1].lower()


def _media_type(content_type: str | None) -> str:
    """'Text/HTML; charset=utf-8' -> 'text/html'."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def detect_kind(filename: str, content_type: str | None, data: bytes | None = None) -> str:
    """The kind (one of KINDS) of an upload.

    With `data`, the bytes decide first: a PDF or an Office package is taken for
    what it is whatever its name, and a name promising one (".pdf", ".docx", ...)
    whose bytes are something else is refused. Otherwise the file extension
    decides; the content type is used only when the name has no extension at all
    (a "report.exe" sent as text/plain is still refused), and bytes holding a NUL
    (outside UTF-16) are no text kind. Raises Unsupported when nothing is recognised.
    """
    sniffed = sniff_kind(data) if data is not None else None
    if sniffed is not None:
        return sniffed
    extension = _extension(filename)
    media_type = _media_type(content_type)
    kind = SUPPORTED_EXTENSIONS.get(extension)
    if kind is None and not extension:
        kind = _KNOWN_CONTENT_TYPES.get(media_type)
    if kind is not None and data is not None and kind in BINARY_KINDS:
        raise Unsupported(f"'{filename}' is not a valid {kind.upper()} file: its content "
                          f"does not match its type")
    if kind is not None and data is not None and _binary(data):
        raise Unsupported(f"'{filename}' is not a {kind} file: its content is binary")
    if kind is not None:
        return kind
    supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
    described = f"'{filename}'" + (f" ({media_type})" if media_type else "")
    raise Unsupported(f"unsupported file type {described}; supported extensions: {supported}")


def content_type_for(kind: str) -> str:
    """The canonical content type of a kind returned by detect_kind."""
    try:
        return _CONTENT_TYPES[kind]
    except KeyError:
        raise Unsupported(f"unknown document kind {kind!r}; expected one of {KINDS}") from None
