"""Page tokens of ListDocuments: (created_at, document_id) of a page's end."""

from __future__ import annotations

from services.common.paging import encode_key
from services.ingest.jobs import DocumentRow


def encode(row: DocumentRow) -> str:
    """The token of the page that starts after `row` (read back by paging.decode_key)."""
    created = row.meta.created_at
    if created is None:
        raise ValueError("a listed document always has created_at")
    return encode_key(created, row.meta.document_id)
