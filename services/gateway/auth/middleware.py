"""Who is calling: every request is authenticated here, then runs as its tenant.

A pure ASGI middleware, so the tenant scope covers the whole request: the handler,
FastAPI's threadpool (anyio copies the context) and a StreamingResponse's iterator,
which all run inside `await self.app(...)` below.
"""

from __future__ import annotations

import hmac
import logging

from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.errors import Unavailable
from services.common.tenancy import DEFAULT_TENANT, tenant_scope
from services.gateway.auth.limits import RateLimited, RateLimiter, SharedRateLimiter
from services.gateway.auth.oidc import JwtVerifier, TokenRejected, looks_like_jwt
from services.gateway.auth.store import KEY_PREFIX, KeyStore, Principal
from services.gateway.config import GatewaySettings
from services.gateway.errors import allowed_methods, error_response
from services.gateway.openai_errors import OpenAIError

logger = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/", "/health", "/livez", "/docs", "/docs/oauth2-redirect",
                          "/openapi.json"})
PUBLIC_PREFIXES = ("/web/",)
ADMIN_PREFIX = "/admin"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ragchat"'}


class Denied(Exception):
    """A request refused before it reaches a route."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self, path: str) -> JSONResponse:
        if path == "/v1" or path.startswith("/v1/"):  # OpenAI clients parse their own shape
            code = "invalid_api_key" if self.status == 401 else self.code
            return OpenAIError(self.status, self.message, code, headers=self.headers).response()
        return error_response(self.status, self.code, self.message, headers=self.headers)


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def is_admin(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def bearer(scope: Scope) -> str | None:
    """The token of an `Authorization: Bearer ...` header, or None."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def _unauthorized(message: str) -> Denied:
    return Denied(401, "unauthorized", message, _CHALLENGE)


class Authenticator:
    """Decides each request's principal; holds the key store and the rate limiter."""

    def __init__(self, settings: GatewaySettings, store: KeyStore | None) -> None:
        self.required = settings.requires_auth()
        self.store = store
        self._admin = settings.admin_token.get_secret_value().encode()
        self.limiter = RateLimiter()
        self.shared: SharedRateLimiter | None = None
        if store is not None and settings.rate_limit_backend == "postgres":
            self.shared = SharedRateLimiter(store.query)
        self.jwt: JwtVerifier | None = None
        if settings.jwt_jwks_url:
            self.jwt = JwtVerifier(settings.jwt_jwks_url, settings.jwt_issuer,
                                   settings.jwt_audience, settings.jwt_tenant_claim)

    def _is_admin_token(self, token: str) -> bool:
        return bool(self._admin) and hmac.compare_digest(token.encode(), self._admin)

    async def admin(self, token: str | None) -> None:
        """Raise Denied unless `token` is the admin token."""
        if not self._admin or self.store is None:
            raise Denied(403, "forbidden", "the admin API is disabled: set RAGCHAT_ADMIN_TOKEN")
        if token is None:
            raise _unauthorized("the admin API needs Authorization: Bearer <admin token>")
        if self._is_admin_token(token):
            return
        if await self.store.verify(token) is not None:
            raise Denied(403, "forbidden", "an API key cannot use the admin API")
        raise _unauthorized("invalid admin token")

    async def tenant(self, token: str | None, path: str, method: str) -> Principal:
        """The principal of a tenant request, after its rate limits; raises Denied."""
        if token is None:
            raise _unauthorized("missing API key: send Authorization: Bearer <key>")
        if self._is_admin_token(token):
            raise Denied(403, "forbidden", "the admin token is not a tenant's API key")
        principal = await self._principal(token)
        limits = principal.limits
        try:
            await self._take(principal.key_id, "requests_per_minute",
                             limits.requests_per_minute, 60.0, "minute")
            if method == "POST" and path == "/upload":
                await self._take(principal.key_id, "uploads_per_hour",
                                 limits.uploads_per_hour, 3600.0, "hour")
        except RateLimited as exc:
            raise Denied(429, "rate_limited", str(exc),
                         {"Retry-After": str(exc.retry_after_s)}) from exc
        return principal

    async def _take(self, key_id: str, limit: str, allowed: int, period_s: float,
                    per: str) -> None:
        if self.shared is not None:
            await self.shared.take(key_id, limit, allowed, period_s, per)
        else:
            self.limiter.take(key_id, limit, allowed, period_s, per)

    async def _principal(self, token: str) -> Principal:
        """The principal of an API key or (when configured) an OIDC token."""
        assert self.store is not None
        if self.jwt is not None and not token.startswith(KEY_PREFIX) and looks_like_jwt(token):
            try:
                subject, tenant = await self.jwt.verify(token)
            except TokenRejected as exc:
                if exc.status == 401:
                    raise _unauthorized(str(exc)) from exc
                raise Denied(exc.status, "forbidden", str(exc)) from exc
            return Principal(f"jwt:{subject}", tenant, await self.store.tenant_limits(tenant))
        principal = await self.store.verify(token)
        if principal is None:
            raise _unauthorized("invalid or revoked API key")
        return principal


class AuthMiddleware:
    """Authenticates /admin with the admin token and everything else (but the public
    paths) with an API key when auth is required; runs tenant requests as their tenant."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or is_public(path) or not _routable(scope):
            await self.app(scope, receive, send)  # unknown routes: the router's 404 / 405
            return
        auth: Authenticator = scope["app"].state.auth
        tenant: str | None = DEFAULT_TENANT
        try:
            if is_admin(path):
                await auth.admin(bearer(scope))
                tenant = None  # the admin acts for no tenant
            elif auth.required:
                principal = await auth.tenant(bearer(scope), path, scope["method"])
                scope.setdefault("state", {})["principal"] = principal
                tenant = principal.tenant
        except Denied as denied:
            await denied.response(path)(scope, receive, send)
            return
        except Unavailable as exc:
            logger.warning("%s %s: %s", scope["method"], path, exc)
            await Denied(503, "unavailable", f"{exc}; try again").response(path)(
                scope, receive, send)
            return
        if tenant is None:
            await self.app(scope, receive, send)
            return
        with tenant_scope(tenant):
            await self.app(scope, receive, send)


def _routable(scope: Scope) -> bool:
    """Whether the API documents this method at this path (no handler runs otherwise)."""
    method = scope["method"]
    return method in allowed_methods(Request(scope)) and method != "OPTIONS"
