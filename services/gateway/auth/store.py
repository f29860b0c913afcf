"""API keys, tenant limits and stored bytes in PostgreSQL, with a short in-memory cache.

A key is `rc_` plus 43 random URL-safe characters (256 bits). Only its sha256 is stored,
so a hash lookup is enough (no slow password hash is needed for a key this random).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from services.common.errors import Unavailable
from services.gateway.auth.limits import Limits

logger = logging.getLogger(__name__)
KEY_PREFIX = "rc_"
_TOUCH_EVERY_S = 60.0  # last_used_at is written at most this often per key and gateway
_CACHE_MAX = 10_000
_LIMIT_FIELDS = ("requests_per_minute", "uploads_per_hour", "storage_bytes")


@dataclass(frozen=True)
class Principal:
    """Who a verified key belongs to, and the limits that apply to it."""

    key_id: str
    tenant: str
    limits: Limits


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """The gateway's tables; `defaults` are the limits of tenants without overrides."""

    def __init__(self, dsn: str, defaults: Limits, cache_s: float, pool_timeout_s: float = 2.0):
        self.defaults, self._cache_s = defaults, cache_s
        self._pool = AsyncConnectionPool(
            dsn, min_size=1, max_size=8, timeout=pool_timeout_s, open=False,
            # Fail fast: a stuck database must not hold every request at the door.
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": 3,
                    "options": "-c statement_timeout=5000"},
            name="ragchat-auth",
        )
        self._cache: dict[str, tuple[Principal | None, float]] = {}
        self._touched: dict[str, float] = {}
        self._limits: dict[str, tuple[Limits, float]] = {}

    async def open(self) -> None:
        # Not waiting: a database that is down answers 503 per request, never a dead gateway.
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    async def _run(self, query: Any, params: Any = ()) -> list[dict[str, Any]]:
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(query, params)
                return await cursor.fetchall() if cursor.description else []
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise Unavailable(f"the key store is unavailable ({type(exc).__name__})") from exc

    async def query(self, query: Any, params: Any = ()) -> list[dict[str, Any]]:
        """Run one statement on the gateway's pool; Unavailable if the database is down."""
        return await self._run(query, params)

    async def create_key(self, tenant: str, name: str) -> tuple[str, dict[str, Any]]:
        """A new key for `tenant`: (the key, its stored row). The key is shown only now."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(8)
        (row,) = await self._run(
            "INSERT INTO api_keys (key_id, key_hash, tenant, name) VALUES (%s, %s, %s, %s)"
            " RETURNING key_id, tenant, name, created_at, last_used_at, revoked_at",
            (key_id, hash_key(key), tenant, name),
        )
        logger.info("api key %s created for tenant %s", key_id, tenant)
        return key, row

    async def list_keys(self, tenant: str | None) -> list[dict[str, Any]]:
        return await self._run(
            "SELECT key_id, tenant, name, created_at, last_used_at, revoked_at FROM api_keys"
            " WHERE %(t)s::text IS NULL OR tenant = %(t)s ORDER BY created_at, key_id",
            {"t": tenant},
        )

    async def revoke(self, key_id: str) -> bool:
        """Revoke a key (again is fine); False if no such key exists."""
        rows = await self._run(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = %s"
            " RETURNING key_id",
            (key_id,),
        )
        self._cache = {h: e for h, e in self._cache.items() if not _is_key(e[0], key_id)}
        if rows:
            logger.info("api key %s revoked", key_id)
        return bool(rows)

    async def verify(self, key: str) -> Principal | None:
        """The principal of a valid, unrevoked key; None otherwise."""
        digest, now = hash_key(key), time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            principal = cached[0]
        else:
            principal = await self._lookup(digest)
            if len(self._cache) >= _CACHE_MAX:  # wrong keys must not grow it without bound
                self._cache.clear()
            self._cache[digest] = (principal, now + self._cache_s)
        if principal is not None:
            await self._touch(principal.key_id, now)
        return principal

    async def _touch(self, key_id: str, now: float) -> None:
        """Record a use in last_used_at, at most once a minute per key (cheap)."""
        if now - self._touched.get(key_id, -_TOUCH_EVERY_S) >= _TOUCH_EVERY_S:
            self._touched[key_id] = now
            await self._run("UPDATE api_keys SET last_used_at = now() WHERE key_id = %s",
                            (key_id,))

    async def _lookup(self, digest: str) -> Principal | None:
        rows = await self._run(
            "SELECT k.key_id, k.tenant, l.requests_per_minute, l.uploads_per_hour,"
            " l.storage_bytes FROM api_keys k LEFT JOIN tenant_limits l USING (tenant)"
            " WHERE k.key_hash = %s AND k.revoked_at IS NULL",
            (digest,),
        )
        if not rows:
            return None
        return Principal(rows[0]["key_id"], rows[0]["tenant"], self._effective(rows[0]))

    def _effective(self, overrides: dict[str, Any]) -> Limits:
        values = {f: overrides.get(f) for f in _LIMIT_FIELDS}
        return Limits(**{f: getattr(self.defaults, f) if v is None else v
                         for f, v in values.items()})

    async def tenant_limits(self, tenant: str) -> Limits:
        """`tenant`'s effective limits, cached as keys are (for bearer tokens)."""
        now = time.monotonic()
        cached = self._limits.get(tenant)
        if cached is None or cached[1] <= now:
            if len(self._limits) >= _CACHE_MAX:
                self._limits.clear()
            cached = self._limits[tenant] = ((await self.limits(tenant))[0], now + self._cache_s)
        return cached[0]

    async def limits(self, tenant: str) -> tuple[Limits, dict[str, int | None]]:
        """(effective limits, the tenant's own overrides) of `tenant`."""
        rows = await self._run(
            "SELECT requests_per_minute, uploads_per_hour, storage_bytes FROM tenant_limits"
            " WHERE tenant = %s",
            (tenant,),
        )
        overrides = rows[0] if rows else dict.fromkeys(_LIMIT_FIELDS)
        return self._effective(overrides), {f: overrides[f] for f in _LIMIT_FIELDS}

    async def set_limits(self, tenant: str, overrides: dict[str, int | None]) -> None:
        """Replace `tenant`'s overrides (None: the default); its keys see them at once here."""
        await self._run(
            "INSERT INTO tenant_limits (tenant, requests_per_minute, uploads_per_hour,"
            " storage_bytes) VALUES (%(tenant)s, %(requests_per_minute)s,"
            " %(uploads_per_hour)s, %(storage_bytes)s) ON CONFLICT (tenant) DO UPDATE SET"
            " requests_per_minute = EXCLUDED.requests_per_minute,"
            " uploads_per_hour = EXCLUDED.uploads_per_hour,"
            " storage_bytes = EXCLUDED.storage_bytes, updated_at = now()",
            {"tenant": tenant, **{f: overrides.get(f) for f in _LIMIT_FIELDS}},
        )
        self._cache = {h: e for h, e in self._cache.items()
                       if e[0] is None or e[0].tenant != tenant}
        self._limits.pop(tenant, None)

    async def storage_used(self, tenant: str) -> int:
        rows = await self._run(
            "SELECT coalesce(sum(size_bytes), 0)::bigint AS used FROM tenant_storage"
            " WHERE tenant = %s",
            (tenant,),
        )
        return int(rows[0]["used"])

    async def record_storage(
        self, tenant: str, document_id: str, version: int, size: int, request_id: str
    ) -> None:
        """Count an accepted upload once (a replayed Idempotency-Key adds nothing)."""
        await self._run(
            "INSERT INTO tenant_storage (tenant, document_id, version, size_bytes, request_id)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (tenant, document_id, version, size, request_id),
        )

    async def stored_request(self, tenant: str, request_id: str) -> bool:
        """Whether an upload with this Idempotency-Key was already counted."""
        rows = await self._run(
            "SELECT 1 FROM tenant_storage WHERE tenant = %s AND request_id = %s LIMIT 1",
            (tenant, request_id),
        )
        return bool(rows)

    async def forget_storage(self, tenant: str, document_id: str) -> None:
        await self._run(
            "DELETE FROM tenant_storage WHERE tenant = %s AND document_id = %s",
            (tenant, document_id),
        )


def _is_key(principal: Principal | None, key_id: str) -> bool:
    return principal is not None and principal.key_id == key_id


def created_view(key: str, row: dict[str, Any]) -> dict[str, Any]:
    """The 201 body of a new key."""
    return {"key": key, **{k: row[k] for k in ("key_id", "tenant", "name", "created_at")}}
