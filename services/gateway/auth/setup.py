"""Wiring of authentication into the app: settings checks, the key store's life, errors."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.common.errors import Unavailable
from services.common.settings import refuse_placeholder_secret
from services.gateway.auth import admin, schema
from services.gateway.auth.limits import Limits
from services.gateway.auth.middleware import Authenticator, AuthMiddleware
from services.gateway.auth.storage import StorageQuotaExceeded
from services.gateway.auth.store import KeyStore
from services.gateway.config import GatewaySettings
from services.gateway.errors import error_response


class AuthMisconfigured(RuntimeError):
    """The gateway must not start with these settings."""


def check_settings(settings: GatewaySettings) -> None:
    """Raise AuthMisconfigured when auth is required but could never be satisfied."""
    token = settings.admin_token.get_secret_value()
    if settings.requires_auth() and not token:
        why = ("RAGCHAT_ENVIRONMENT=production" if settings.is_production()
               else "RAGCHAT_AUTH_REQUIRED=true")
        raise AuthMisconfigured(
            f"{why} requires API keys, so RAGCHAT_ADMIN_TOKEN must be set (the secret "
            "that creates them); refusing to start"
        )
    if settings.jwt_jwks_url and not settings.jwt_issuer:
        raise AuthMisconfigured("RAGCHAT_JWT_JWKS_URL needs RAGCHAT_JWT_ISSUER (the `iss` "
                                "its tokens must carry); refusing to start")
    try:
        refuse_placeholder_secret("RAGCHAT_ADMIN_TOKEN", token or "x", settings)
    except ValueError as exc:
        raise AuthMisconfigured(str(exc)) from exc


def install(app: FastAPI, settings: GatewaySettings) -> None:
    """Check the settings, then add the middleware, the admin routes and error handlers."""
    check_settings(settings)
    store = None
    if settings.uses_key_store():
        defaults = Limits(settings.rate_limit_per_minute, settings.uploads_per_hour,
                          int(settings.storage_quota_mb * 1024 * 1024))
        store = KeyStore(settings.database_dsn(), defaults, settings.auth_cache_s)
    app.state.auth = Authenticator(settings, store)
    app.include_router(admin.router)
    app.add_exception_handler(StorageQuotaExceeded, _quota_exceeded)
    app.add_exception_handler(Unavailable, _unavailable)
    app.add_middleware(AuthMiddleware)


async def open_store(app: FastAPI, settings: GatewaySettings) -> None:
    """Create the tables (outside production, where the migrate task does it) and connect."""
    store = app.state.auth.store
    if store is None:
        return
    if not settings.is_production():
        await asyncio.to_thread(schema.migrate, settings.database_dsn())
    await store.open()


async def close_store(app: FastAPI) -> None:
    if app.state.auth.store is not None:
        await app.state.auth.store.close()


async def _quota_exceeded(request: Request, exc: Exception) -> JSONResponse:
    return error_response(413, "storage_quota_exceeded", str(exc))


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    return error_response(503, "unavailable", f"{exc}; try again")
