"""Per-tenant storage quota: the raw bytes of every accepted upload, until deleted.

The gateway counts what it accepted (one row per document version, so a replayed
Idempotency-Key adds nothing) and checks the quota before an upload is submitted.
Concurrent uploads may overshoot the quota by what is in flight at once.
"""

from __future__ import annotations

from fastapi import Request

from services.gateway.auth.middleware import Authenticator
from services.gateway.auth.store import Principal


class StorageQuotaExceeded(Exception):
    """An upload would take its tenant over its storage quota (413)."""


def _principal(request: Request) -> tuple[Authenticator, Principal] | None:
    principal = getattr(request.state, "principal", None)
    auth: Authenticator = request.app.state.auth
    if principal is None or auth.store is None:
        return None  # keyless: one tenant, no quota
    return auth, principal


async def admit(request: Request, size: int, request_id: str = "") -> None:
    """Raise StorageQuotaExceeded if `size` more bytes do not fit the caller's quota.

    A retry of a counted upload (same Idempotency-Key) passes: it stores nothing new.
    """
    found = _principal(request)
    if found is None or found[1].limits.storage_bytes <= 0:
        return
    auth, principal = found
    assert auth.store is not None
    if request_id and await auth.store.stored_request(principal.tenant, request_id):
        return
    quota = principal.limits.storage_bytes
    used = await auth.store.storage_used(principal.tenant)
    if used + size > quota:
        raise StorageQuotaExceeded(
            f"storage quota exceeded: tenant {principal.tenant!r} stores {used} of its "
            f"{quota} bytes (storage_bytes) and this upload is {size} bytes; delete "
            "documents or ask for a larger quota"
        )


async def record(
    request: Request, document_id: str, version: int, size: int, request_id: str = ""
) -> None:
    """Count an accepted upload against the caller's tenant."""
    found = _principal(request)
    if found is not None:
        assert found[0].store is not None
        await found[0].store.record_storage(
            found[1].tenant, document_id, version, size, request_id)


async def forget(request: Request, document_id: str) -> None:
    """Stop counting a deleted document."""
    found = _principal(request)
    if found is not None:
        assert found[0].store is not None
        await found[0].store.forget_storage(found[1].tenant, document_id)
