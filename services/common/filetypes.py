"""The upload types ragchat accepts, defined once for the gateway and the ingest service."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from types import MappingProxyType

from services.common.errors import Unsupported

KINDS: tuple[str, ...] = ("text", "markdown", "html", "pdf")

# File extension (lower case, with the dot) -> kind.
SUPPORTED_EXTENSIONS: Mapping[str, str] = MappingProxyType(
    {
        ".txt": "text",
        ".md": "markdown",
        ".markdown": "markdown",
        ".html": "html",
        ".htm": "html",
        ".pdf": "pdf",
    }
)

# Canonical content type of each kind, as stored with the document.
_CONTENT_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "text": "text/plain",
        "markdown": "text/markdown",
        "html": "text/html",
        "pdf": "application/pdf",
    }
)

# Content types accepted as a fallback when the file name says nothing.
_KNOWN_CONTENT_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "text/plain": "text",
        "text/markdown": "markdown",
        "text/x-markdown": "markdown",
        "text/html": "html",
        "application/xhtml+xml": "html",
        "application/pdf": "pdf",
        "application/x-pdf": "pdf",
    }
)


def _extension(filename: str) -> str:
    """The lower-case extension of the last path component ('' when there is none)."""
    base = posixpath.basename(filename.replace("\\", "/")).strip()
    return posixpath.splitext(base)[1].lower()


def _media_type(content_type: str | None) -> str:
    """'Text/HTML; charset=utf-8' -> 'text/html'."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def detect_kind(filename: str, content_type: str | None) -> str:
    """The kind ("text", "markdown", "html" or "pdf") of an upload.

    The file extension decides; the content type is used only when the name has
    no extension at all (a "report.exe" sent as text/plain is still refused).
    Raises Unsupported when neither is recognised.
    """
    extension = _extension(filename)
    kind = SUPPORTED_EXTENSIONS.get(extension)
    if kind is not None:
        return kind
    media_type = _media_type(content_type)
    if not extension and media_type in _KNOWN_CONTENT_TYPES:
        return _KNOWN_CONTENT_TYPES[media_type]
    supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
    described = f"'{filename}'" + (f" ({media_type})" if media_type else "")
    raise Unsupported(f"unsupported file type {described}; supported extensions: {supported}")


def content_type_for(kind: str) -> str:
    """The canonical content type of a kind returned by detect_kind."""
    try:
        return _CONTENT_TYPES[kind]
    except KeyError:
        raise Unsupported(f"unknown document kind {kind!r}; expected one of {KINDS}") from None
