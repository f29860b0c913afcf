"""Opaque keyset page tokens shared by the List RPCs: (timestamp, id) of a page's end."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from services.common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
_INVALID = "page_token is not valid: pass the next_page_token of a previous response"
PageKey = tuple[datetime, str]
Row = TypeVar("Row")


def page_size(requested: int) -> int:
    """0 means the default; anything outside 1..MAX_PAGE_SIZE is refused, not clamped."""
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= requested <= MAX_PAGE_SIZE:
        raise InvalidArgument(
            f"page_size must be between 1 and {MAX_PAGE_SIZE}", field="page_size"
        )
    return requested


def encode_key(moment: datetime, key: str) -> str:
    """The token of the page that starts after the row keyed (moment, key)."""
    raw = json.dumps([moment.isoformat(), key], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_key(token: str) -> PageKey | None:
    """None for the first page; InvalidArgument for anything not made by `encode_key`."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        stamp, key = json.loads(raw)
        moment = datetime.fromisoformat(stamp)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidArgument(_INVALID, field="page_token") from exc
    if moment.tzinfo is None or not isinstance(key, str) or not key:
        raise InvalidArgument(_INVALID, field="page_token")
    return moment, key


def fetch_page(
    fetch: Callable[[int, PageKey | None], list[Row]], requested_size: int, token: str,
    key_of: Callable[[Row], PageKey],
) -> tuple[list[Row], str]:
    """One keyset page: `fetch(limit, after)` reads the rows after the token's key, and
    `key_of` keys a row; returns the page and the next page's token ("" on the last)."""
    size = page_size(requested_size)
    after = decode_key(token)
    rows = fetch(size + 1, after)  # one extra row tells whether another page exists
    following = encode_key(*key_of(rows[size - 1])) if len(rows) > size else ""
    return rows[:size], following
