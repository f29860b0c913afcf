"""Upload checks shared by the gateway (early 4xx) and the ingest service (authority)."""

from __future__ import annotations

import re
import unicodedata

from services.common.errors import InvalidArgument, TooLarge
from services.common.filetypes import detect_kind


def validate_upload(
    filename: str, content_type: str, size: int, max_bytes: int, data: bytes | None = None
) -> str:
    """Check an upload before storing anything; returns its kind (text, pdf, docx, ...).

    With `data` (the file's bytes) the content decides the kind where it can (PDF and
    Office files) and a .pdf/.docx/.pptx/.xlsx whose bytes are something else is
    refused. Raises Unsupported for an unknown or mismatched type, TooLarge over the
    limit, and InvalidArgument for a missing name or an empty file.
    """
    if not filename.strip():
        raise InvalidArgument("a file name is required", field="filename")
    if size > max_bytes:
        detect_kind(filename, content_type)  # an unknown type is still a 415, not a 413
        raise TooLarge(f"file is {size} bytes; the limit is {max_bytes} bytes")
    if size == 0:
        detect_kind(filename, content_type)
        raise InvalidArgument("the file is empty", field="content")
    return detect_kind(filename, content_type, data)


MAX_FILENAME = 200
# ANSI/VT escape sequences (CSI ... final byte, OSC ... BEL/ST, and lone ESC + one char).
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?")


def clean_filename(filename: str) -> str:
    """A file name safe to show and store as title, source and S3 key part.

    Keeps only the last path component (either separator), drops ANSI escapes and
    every control or format character, trims dots and spaces at both ends (so no
    `..`), and caps the length at MAX_FILENAME keeping the extension. Returns ""
    when nothing is left (the caller then refuses the upload).
    """
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = _ANSI.sub("", name)
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = name.strip(" .")
    if len(name) > MAX_FILENAME:
        stem, dot, extension = name.rpartition(".")
        extension = extension[:16] if dot else ""
        keep = MAX_FILENAME - len(extension) - len(dot)
        name = (stem if dot else name)[:keep].rstrip(" .") + (dot + extension if dot else "")
    return name
