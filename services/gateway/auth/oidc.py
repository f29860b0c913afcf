"""OIDC / JWT bearer tokens (e.g. Amazon Cognito) as an alternative to API keys.

A token is verified against the issuer's JWKS (fetched over HTTPS, cached, fetched
again when a token names a key id it does not hold: key rotation), then its issuer,
audience and expiry are checked and the tenant is read from one claim.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from services.common.errors import Unavailable
from services.common.tenancy import valid_tenant

logger = logging.getLogger(__name__)
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384"]
_REFRESH_S = 600.0  # JWKS kept this long
_REFETCH_MIN_S = 10.0  # an unknown key id fetches the JWKS again at most this often


class TokenRejected(Exception):
    """The token is not acceptable; `status` is 401 (invalid) or 403 (no tenant)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


class JwtVerifier:
    """Verifies bearer JWTs of one issuer; `tenant_claim` names the tenant's claim."""

    def __init__(self, jwks_url: str, issuer: str, audience: str, tenant_claim: str) -> None:
        self.jwks_url, self.tenant_claim = jwks_url, tenant_claim
        claims: dict[str, Any] = {"iss": {"essential": True, "value": issuer},
                                  "exp": {"essential": True}}
        if audience:
            claims["aud"] = {"essential": True, "value": audience}
        self._registry = jwt.JWTClaimsRegistry(leeway=30, **claims)
        self._keys: KeySet | None = None
        self._fetched_at = self._forced_at = -1e9

    async def _key_set(self, force: bool = False) -> KeySet:
        now = time.monotonic()
        stale = now - self._fetched_at > _REFRESH_S
        if force and now - self._forced_at > _REFETCH_MIN_S:
            self._forced_at, stale = now, True
        if self._keys is None or stale:
            try:
                async with httpx.AsyncClient(timeout=5.0) as client:
                    response = await client.get(self.jwks_url)
                    response.raise_for_status()
                self._keys = KeySet.import_key_set(response.json())
                self._fetched_at = now
            except (httpx.HTTPError, ValueError, JoseError) as exc:
                logger.warning("JWKS fetch from %s failed: %s", self.jwks_url, exc)
                if self._keys is None:
                    raise Unavailable("the identity provider's keys are unavailable") from exc
        assert self._keys is not None
        return self._keys

    async def verify(self, token: str) -> tuple[str, str]:
        """(subject, tenant) of a valid token; raises TokenRejected or Unavailable."""
        keys = await self._key_set()
        try:
            try:
                decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
            except InvalidKeyIdError:  # perhaps a key published since: fetch again
                decoded = jwt.decode(token, await self._key_set(force=True), algorithms=ALGORITHMS)
            self._registry.validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise TokenRejected(401, f"invalid bearer token ({type(exc).__name__})") from exc
        tenant = decoded.claims.get(self.tenant_claim)
        if not isinstance(tenant, str) or not valid_tenant(tenant):
            raise TokenRejected(403, f"the token's {self.tenant_claim!r} claim names no valid "
                                     "tenant")
        return str(decoded.claims.get("sub", "")), tenant
