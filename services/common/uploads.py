"""Upload checks shared by the gateway (early 4xx) and the ingest service (authority)."""

from __future__ import annotations

from services.common.errors import InvalidArgument, TooLarge
from services.common.filetypes import detect_kind


def validate_upload(filename: str, content_type: str, size: int, max_bytes: int) -> str:
    """Check an upload before storing anything; returns its kind (text, pdf, ...).

    Raises Unsupported for an unknown type, TooLarge over the limit, and
    InvalidArgument for a missing name or an empty file.
    """
    if not filename.strip():
        raise InvalidArgument("a file name is required")
    kind = detect_kind(filename, content_type)
    if size > max_bytes:
        raise TooLarge(f"file is {size} bytes; the limit is {max_bytes} bytes")
    if size == 0:
        raise InvalidArgument("the file is empty")
    return kind
