"""Requests that no authentication assigned to a tenant act for the default tenant."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.tenancy import DEFAULT_TENANT, tenant_or_none, tenant_scope


class DefaultTenant:
    """Runs a request inside ``tenant_scope(DEFAULT_TENANT)`` unless it already has one.

    Keyless deployments (``make run``) serve one tenant, "default"; the gRPC client
    interceptor then sends it to every service, which rejects calls without one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if tenant_or_none() is not None:
            await self.app(scope, receive, send)
            return
        with tenant_scope(DEFAULT_TENANT):
            await self.app(scope, receive, send)
