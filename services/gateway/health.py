"""GET /livez (this process is up) and GET /health (every backend and its dependencies).

The load balancer checks /livez, so one backend outage never takes every gateway task
out of service; /health is for operators and orchestration that need the whole truth.
"""

from __future__ import annotations

import asyncio

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from grpc_health.v1 import health_pb2

from services.common.health import (
    CONFIG_PREFIX,
    DEPENDENCY_PREFIX,
    GENERATION_PREFIX,
    TASK_PREFIX,
)
from services.gateway.clients import ServiceClients
from services.gateway.schemas import HealthView, LiveView

router = APIRouter(tags=["health"])
_TIMEOUT_S = 2.0
_STATUS_NAME = health_pb2.HealthCheckResponse.ServingStatus.Name


@router.get("/livez", response_model=LiveView)
async def livez() -> LiveView:
    """200 while this process serves HTTP, whatever the state of the backends."""
    return LiveView(status="ok")


async def _check(stub: object) -> tuple[str, dict[str, str], str, dict[str, object]]:
    """A service's overall status, its dependencies', its serving configuration's
    version and the index generation it searches (from grpc.health.v1 List)."""
    try:
        resp = await stub.List(  # type: ignore[attr-defined]
            health_pb2.HealthListRequest(), timeout=_TIMEOUT_S
        )
    except grpc.aio.AioRpcError as exc:
        return exc.code().name, {}, "", {}
    statuses = {name: _STATUS_NAME(s.status) for name, s in resp.statuses.items()}
    parts = {
        name.split("/", 1)[1]: status
        for name, status in sorted(statuses.items())
        if name.startswith((DEPENDENCY_PREFIX, TASK_PREFIX))
    }
    version = next((n[len(CONFIG_PREFIX):] for n in statuses if n.startswith(CONFIG_PREFIX)), "")
    generation: dict[str, object] = {}
    for name in statuses:
        if name.startswith(GENERATION_PREFIX):
            gid, _, model = name[len(GENERATION_PREFIX):].partition("/")
            generation = {"id": int(gid) if gid.isdigit() else gid, "embedding_model": model}
    return statuses.get("", "UNKNOWN"), parts, version, generation


@router.get("/health", response_model=HealthView, responses={503: {"model": HealthView}})
async def health(request: Request) -> JSONResponse:
    """200 when every backend service and all its dependencies are SERVING; otherwise
    503, naming what is not."""
    clients: ServiceClients = request.app.state.clients
    names = list(clients.health)
    results = await asyncio.gather(*(_check(clients.health[n]) for n in names))
    services = {n: r[0] for n, r in zip(names, results, strict=True)}
    dependencies = {n: r[1] for n, r in zip(names, results, strict=True) if r[1]}
    versions = {n: r[2] for n, r in zip(names, results, strict=True) if r[2]}
    generations = {n: r[3] for n, r in zip(names, results, strict=True) if r[3]}
    versions["gateway"] = request.app.state.settings.config_version or "env"
    ok = all(status == "SERVING" for status in services.values())
    body = HealthView(
        status="ok" if ok else "degraded", services=services, dependencies=dependencies,
        config_versions=versions, index_generations=generations,
    )
    return JSONResponse(status_code=200 if ok else 503, content=body.model_dump())
