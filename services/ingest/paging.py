"""Opaque keyset page tokens for ListDocuments: (created_at, document_id) of a page's end."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from services.common.errors import InvalidArgument
from services.ingest.jobs import DocumentRow, PageKey

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
_INVALID = "page_token is not valid: pass the next_page_token of a previous response"


def page_size(requested: int) -> int:
    """0 means the default; anything outside 1..MAX_PAGE_SIZE is refused, not clamped."""
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= requested <= MAX_PAGE_SIZE:
        raise InvalidArgument(
            f"page_size must be between 1 and {MAX_PAGE_SIZE}", field="page_size"
        )
    return requested


def encode(row: DocumentRow) -> str:
    """The token of the page that starts after `row`."""
    created = row.meta.created_at
    if created is None:
        raise ValueError("a listed document always has created_at")
    raw = json.dumps([created.isoformat(), row.meta.document_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str) -> PageKey | None:
    """None for the first page; InvalidArgument for anything not made by `encode`."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created, document_id = json.loads(raw)
        moment = datetime.fromisoformat(created)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidArgument(_INVALID, field="page_token") from exc
    if moment.tzinfo is None or not isinstance(document_id, str) or not document_id:
        raise InvalidArgument(_INVALID, field="page_token")
    return moment, document_id
