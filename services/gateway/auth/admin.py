"""The admin API (RAGCHAT_ADMIN_TOKEN): API keys and per-tenant limits."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.common.tenancy import TENANT_PATTERN, valid_tenant
from services.gateway.auth.middleware import Authenticator
from services.gateway.auth.store import KeyStore, created_view
from services.gateway.errors import error_response
from services.gateway.openapi import errors, json_body
from services.gateway.schemas import JSON_INT

router = APIRouter(prefix="/admin", tags=["admin"])
_TENANT = TENANT_PATTERN.pattern


def _tenant(value: str) -> str:
    """The one check of a tenant id (the pattern alone would pass a trailing newline)."""
    if not valid_tenant(value):
        raise ValueError(f"not a tenant id: use 1-63 of a-z, 0-9, _ and -, matching {_TENANT}")
    return value


Tenant = Annotated[str, AfterValidator(_tenant)]
TenantQuery = Annotated[
    Tenant | None, Query(pattern=_TENANT, description="Only this tenant's keys")
]
TenantPath = Annotated[Tenant, Path(pattern=_TENANT)]
_BIG = 2**53 - 1  # JSON's exact integers: every client reads it as written
# A JSON integer, never true/false or "5" (pydantic's lax mode takes both).
Limit = Annotated[int, Field(ge=0, le=_BIG, strict=False), JSON_INT]
Rate = Annotated[int, Field(ge=0, le=2**31 - 1, strict=False), JSON_INT]  # an int column


class KeyCreate(BaseModel):
    """A key to make for a tenant."""

    model_config = ConfigDict(extra="forbid", strict=True)
    tenant: Tenant = Field(pattern=_TENANT, description="Tenant id: a-z, 0-9, _ and -")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$",
                      description="What the key is for, e.g. the client's name")


class KeyView(BaseModel):
    """A key as listed: never the key itself."""

    key_id: str
    tenant: str
    name: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class KeyCreated(BaseModel):
    """A new key. `key` is shown this once; only its hash is stored."""

    key: str
    key_id: str
    tenant: str
    name: str
    created_at: datetime


class KeyList(BaseModel):
    keys: list[KeyView]


class LimitValues(BaseModel):
    """Limits of a tenant; 0 means unlimited, null (in an update) the gateway default."""

    model_config = ConfigDict(extra="forbid", strict=True)
    requests_per_minute: Rate | None = None
    uploads_per_hour: Rate | None = None
    storage_bytes: Limit | None = None


class LimitsView(BaseModel):
    tenant: str
    limits: LimitValues = Field(description="What applies now")
    overrides: LimitValues = Field(description="The tenant's own values; null: the default")
    storage_used_bytes: int


def _store(request: Request) -> KeyStore:
    auth: Authenticator = request.app.state.auth
    assert auth.store is not None  # the middleware lets no admin call through without it
    return auth.store


# The admin API answers 401 / 403 itself (middleware) and 503 when its database is down.
_ADMIN = (401, 403, 503, 504)
KeyId = Annotated[str, Path(min_length=1, max_length=64, pattern="^[A-Za-z0-9_-]+$")]


@router.post("/api-keys", status_code=201, response_model=KeyCreated,
             dependencies=[Depends(json_body)], responses=errors(*_ADMIN, 400, 413, 415, 422))
async def create_key(body: KeyCreate, request: Request) -> KeyCreated:
    """Make an API key for a tenant; the response is the only time the key is shown."""
    key, row = await _store(request).create_key(body.tenant, body.name)
    return KeyCreated(**created_view(key, row))


@router.get("/api-keys", response_model=KeyList, responses=errors(*_ADMIN, 422))
async def list_keys(request: Request, tenant: TenantQuery = None) -> KeyList:
    """Every key (or one tenant's), revoked ones included, oldest first."""
    return KeyList(keys=[KeyView(**row) for row in await _store(request).list_keys(tenant)])


@router.delete("/api-keys/{key_id}", status_code=204, response_model=None,
               responses=errors(*_ADMIN, 404, 422))
async def revoke_key(key_id: KeyId, request: Request) -> Response | JSONResponse:
    """Revoke a key: its next request gets 401. 404 for a key that never existed."""
    if not await _store(request).revoke(key_id):
        return error_response(404, "not_found", f"no API key {key_id!r}")
    request.app.state.auth.limiter.forget(key_id)
    return Response(status_code=204)


async def _limits_view(store: KeyStore, tenant: str) -> LimitsView:
    effective, overrides = await store.limits(tenant)
    return LimitsView(
        tenant=tenant,
        limits=LimitValues(**vars(effective)),
        overrides=LimitValues(**overrides),
        storage_used_bytes=await store.storage_used(tenant),
    )


@router.get("/tenants/{tenant}/limits", response_model=LimitsView,
            responses=errors(*_ADMIN, 404, 422))
async def get_limits(tenant: TenantPath, request: Request) -> LimitsView:
    """A tenant's limits and the bytes it stores."""
    return await _limits_view(_store(request), tenant)


@router.put("/tenants/{tenant}/limits", response_model=LimitsView,
            dependencies=[Depends(json_body)],
            responses=errors(*_ADMIN, 400, 404, 413, 415, 422))
async def set_limits(tenant: TenantPath, body: LimitValues, request: Request) -> LimitsView:
    """Replace a tenant's overrides (omitted or null: the gateway default)."""
    store = _store(request)
    await store.set_limits(tenant, body.model_dump())
    return await _limits_view(store, tenant)
