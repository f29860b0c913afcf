"""The tenant a request acts for: one context variable, carried across gRPC in metadata.

The gateway authenticates a caller and enters ``tenant_scope(tenant)`` for the request;
every gRPC call made inside carries the tenant in ``TENANT_METADATA_KEY``; each service
reads it back into the same context variable, and the database layer sets it per
transaction for row-level security. Code that needs the tenant calls ``current_tenant()``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

TENANT_METADATA_KEY = "x-ragchat-tenant"
DEFAULT_TENANT = "default"
# Tenant ids appear in S3 keys, collection names and SQL settings: keep them plain.
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

_current: ContextVar[str | None] = ContextVar("ragchat_tenant", default=None)


class TenantMissing(LookupError):
    """Raised when code that needs a tenant runs outside any tenant scope."""


def valid_tenant(tenant: str) -> bool:
    """Whether ``tenant`` is a well-formed tenant id."""
    return bool(TENANT_PATTERN.fullmatch(tenant))


def current_tenant() -> str:
    """The tenant of the running request; raises ``TenantMissing`` outside a scope."""
    tenant = _current.get()
    if tenant is None:
        raise TenantMissing("no tenant in scope")
    return tenant


def tenant_or_none() -> str | None:
    """The tenant of the running request, or None outside a scope."""
    return _current.get()


@contextmanager
def tenant_scope(tenant: str) -> Iterator[str]:
    """Run the enclosed code as ``tenant``."""
    if not valid_tenant(tenant):
        raise ValueError(f"invalid tenant id {tenant!r}")
    token = _current.set(tenant)
    try:
        yield tenant
    finally:
        _current.reset(token)
