"""The page key of ListDocuments: (created_at, document_id)."""

from __future__ import annotations

from services.common.paging import PageKey
from services.ingest.jobs import DocumentRow


def document_key(row: DocumentRow) -> PageKey:
    """Where a page ending at `row` ends (services.common.paging encodes it)."""
    created = row.meta.created_at
    if created is None:
        raise ValueError("a listed document always has created_at")
    return created, row.meta.document_id
