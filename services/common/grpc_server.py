"""gRPC server bootstrap shared by every service: health, reflection, errors, SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry.instrumentation.grpc import aio_server_interceptor

from services.common.errors import RagchatError, TenantRequired, status_metadata
from services.common.health import CONFIG_PREFIX, TASK_PREFIX, HealthMonitor, HealthServicer, Probe
from services.common.reflection import enable_reflection
from services.common.settings import GrpcServiceSettings
from services.common.tenancy import TENANT_METADATA_KEY, tenant_scope, valid_tenant
from services.common.textcheck import reject_nul

# Methods every caller may use without a tenant: they reveal no tenant's data.
_TENANTLESS_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

# Tells the caller's gRPC retry policy not to retry: the server answered, and knows
# that trying again at once will not help (e.g. its database is down).
NO_RETRY_KEY = "grpc-retry-pushback-ms"
_NO_RETRY = ((NO_RETRY_KEY, "-1"),)

logger = logging.getLogger(__name__)


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Turns domain errors into gRPC statuses, and anything else into a bare INTERNAL."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if handler.unary_unary:
            return handler._replace(unary_unary=_wrap_unary(handler.unary_unary, method))
        if handler.unary_stream:
            return handler._replace(unary_stream=_wrap_stream(handler.unary_stream, method))
        return handler


class TenantInterceptor(grpc.aio.ServerInterceptor):
    """Runs every handler inside ``tenant_scope`` of the caller's tenant metadata.

    A call without a well-formed tenant is rejected (UNAUTHENTICATED, reason
    TENANT_MISSING) before its handler runs; health and reflection need none.
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(_TENANTLESS_PREFIXES):
            return handler
        tenant = _tenant_of(handler_call_details.invocation_metadata)
        if handler.unary_unary:
            return handler._replace(unary_unary=_scoped_unary(handler.unary_unary, tenant))
        if handler.unary_stream:
            return handler._replace(unary_stream=_scoped_stream(handler.unary_stream, tenant))
        return handler


def _tenant_of(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key == TENANT_METADATA_KEY and isinstance(value, str) and valid_tenant(value):
            return value
    return None


async def _reject(context: grpc.aio.ServicerContext) -> None:
    error = TenantRequired(f"a valid tenant id is required in metadata {TENANT_METADATA_KEY!r}")
    await context.abort(error.code, str(error), trailing_metadata=status_metadata(error))


def _scoped_unary(behavior: Callable[..., Any], tenant: str | None) -> Callable[..., Any]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if tenant is None:
            await _reject(context)
        with tenant_scope(str(tenant)):
            return await behavior(request, context)

    return wrapper


def _scoped_stream(behavior: Callable[..., Any], tenant: str | None) -> Callable[..., Any]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if tenant is None:
            await _reject(context)
        with tenant_scope(str(tenant)):
            async for item in behavior(request, context):
                yield item

    return wrapper


async def _abort(context: grpc.aio.ServicerContext, exc: Exception, method: str) -> None:
    if isinstance(exc, RagchatError):
        await context.abort(
            exc.code, str(exc), trailing_metadata=(*status_metadata(exc), *_NO_RETRY)
        )
    logger.exception("unhandled error in %s", method)
    internal = RagchatError("internal error")
    await context.abort(internal.code, str(internal), trailing_metadata=status_metadata(internal))


def _wrap_unary(behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            reject_nul(request)
            return await behavior(request, context)
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to a status below
            await _abort(context, exc, method)

    return wrapper


def _wrap_stream(behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            reject_nul(request)
            async for item in behavior(request, context):
                yield item
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to a status below
            await _abort(context, exc, method)

    return wrapper


@dataclass
class RunningServer:
    """A started server and the port it bound (useful with port 0 in tests)."""

    server: grpc.aio.Server
    health: HealthServicer
    port: int
    names: list[str]

    async def stop(self, grace: float) -> None:
        """Report NOT_SERVING, then let in-flight calls finish within `grace` seconds."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def start_server(
    address: str,
    register: Callable[[grpc.aio.Server], list[str]],
    max_message_mb: int = 64,
    initial: int = health_pb2.HealthCheckResponse.SERVING,
) -> RunningServer:
    """Create, register and start a server. `register` returns the full service names;
    they report `initial` until someone (a HealthMonitor) says otherwise."""
    limit = max_message_mb * 1024 * 1024
    server = grpc.aio.server(
        interceptors=[aio_server_interceptor(), ErrorMappingInterceptor(), TenantInterceptor()],
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
        ],
    )
    names = register(server)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in [*names, ""]:
        await health_servicer.set(name, initial)
    enable_reflection([*names, health.SERVICE_NAME], server)
    port = server.add_insecure_port(address)
    await server.start()
    logger.info("serving %s on %s", ", ".join(names), address.rsplit(":", 1)[0] + f":{port}")
    return RunningServer(server=server, health=health_servicer, port=port, names=names)


async def wait_for_signal() -> None:
    """Block until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve_forever(
    settings: GrpcServiceSettings,
    default_port: int,
    register: Callable[[grpc.aio.Server], list[str]],
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    background: Mapping[str, Callable[[asyncio.Event], Awaitable[None]]] | None = None,
    probes: Sequence[Probe] = (),
    notes: Callable[[], Sequence[str]] | None = None,
) -> None:
    """Run a service until SIGTERM, then shut down gracefully.

    Health reflects `probes` (dependencies) and the `background` tasks (e.g. a queue
    worker), which are supervised: one that dies is logged at once and turns the
    service NOT_SERVING. At shutdown they get an event and `shutdown_grace_s` to stop.
    """
    # NOT_SERVING until the first dependency check has run.
    running = await start_server(
        settings.listen_address(default_port), register, settings.max_message_mb,
        initial=health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    monitor = HealthMonitor(
        running.health, running.names, probes, interval_s=settings.health_interval_s,
        notes=notes,
    )
    await running.health.set(CONFIG_PREFIX + (settings.config_version or "env"),
                             health_pb2.HealthCheckResponse.SERVING)
    stop = asyncio.Event()
    tasks = []
    for name, body in (background or {}).items():
        await running.health.set(TASK_PREFIX + name, health_pb2.HealthCheckResponse.SERVING)
        tasks.append(monitor.supervise(name, body, stop))
    # The monitor's first check (inside run, before its first pause) turns SERVING.
    tasks.append(asyncio.create_task(monitor.run(stop), name="health"))
    await wait_for_signal()
    logger.info("shutting down (grace %.1fs)", settings.shutdown_grace_s)
    stop.set()
    await running.stop(settings.shutdown_grace_s)
    if tasks:
        # Background tasks honour `stop` within the grace period (the worker abandons
        # its job cleanly); a little slack covers their bookkeeping.
        _, pending = await asyncio.wait(tasks, timeout=settings.shutdown_grace_s + 5)
        for task in pending:
            logger.warning("background task %s did not stop in time", task.get_name())
            task.cancel()
    if on_shutdown is not None:
        await on_shutdown()
