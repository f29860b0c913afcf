"""Upload checks shared by the gateway (early 4xx) and the ingest service (authority)."""

from __future__ import annotations

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
