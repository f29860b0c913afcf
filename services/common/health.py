"""Health that tells the truth: dependency probes and supervised background tasks.

Each service reports one gRPC health status per dependency (`dependency/postgres`,
`dependency/s3`, ...) and per background task (`task/worker`), plus the overall
status ("" and the service names): SERVING only while every probe passes and no
background task has died. `List` (grpc.health.v1) returns them all, so the gateway's
/health can say which dependency is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2

from services.common.runner import pause

logger = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
DEPENDENCY_PREFIX = "dependency/"
TASK_PREFIX = "task/"
# One always-SERVING entry "config/<version>" names the serving configuration in use.
CONFIG_PREFIX = "config/"
# Always-SERVING entries "generation/<id>/<model id>": the index generation retrieval
# searches (README, "Reindexing without downtime").
GENERATION_PREFIX = "generation/"


class HealthServicer(health.aio.HealthServicer):
    """The library's servicer plus `List`, which it does not implement."""

    async def List(
        self, request: health_pb2.HealthListRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthListResponse:
        return health_pb2.HealthListResponse(
            statuses={
                name: health_pb2.HealthCheckResponse(status=status)
                for name, status in self._server_status.items()
            }
        )

    def forget(self, name: str) -> None:
        """Remove an entry (one that names a fact that changed)."""
        self._server_status.pop(name, None)


@dataclass(frozen=True)
class Probe:
    """A dependency check: `check` raises when the dependency is unusable."""

    name: str
    check: Callable[[], None]


class HealthMonitor:
    """Probes dependencies on an interval and watches background tasks."""

    def __init__(
        self,
        servicer: HealthServicer,
        service_names: Sequence[str],
        probes: Sequence[Probe] = (),
        interval_s: float = 2.0,
        timeout_s: float = 3.0,
        notes: Callable[[], Sequence[str]] | None = None,
    ) -> None:
        """`notes`: names published as SERVING entries on every check, replacing the
        previous check's (facts such as the index generation in use; never blocking)."""
        self._servicer = servicer
        self._notes = notes
        self._noted: set[str] = set()
        self._names = [*service_names, ""]
        self._probes = list(probes)
        self._interval, self._timeout = interval_s, timeout_s
        self._failed: dict[str, str] = {}
        self._dead: dict[str, str] = {}

    @property
    def healthy(self) -> bool:
        return not self._failed and not self._dead

    async def check_once(self) -> None:
        """Run every probe (concurrently, bounded by the timeout) and publish the result."""
        results = await asyncio.gather(*(self._run(p) for p in self._probes))
        for probe, error in zip(self._probes, results, strict=True):
            was = self._failed.get(probe.name)
            if error is None:
                self._failed.pop(probe.name, None)
                if was is not None:
                    logger.info("dependency %s is back", probe.name)
            else:
                self._failed[probe.name] = error
                if was is None:
                    logger.warning("dependency %s is unavailable: %s", probe.name, error)
            await self._servicer.set(
                DEPENDENCY_PREFIX + probe.name, SERVING if error is None else NOT_SERVING
            )
        if self._notes is not None:
            noted = set(self._notes())
            for name in self._noted - noted:
                self._servicer.forget(name)
            for name in noted:
                await self._servicer.set(name, SERVING)
            self._noted = noted
        await self._publish()

    async def _run(self, probe: Probe) -> str | None:
        try:
            await asyncio.wait_for(asyncio.to_thread(probe.check), self._timeout)
        except TimeoutError:
            return f"no answer within {self._timeout:.0f}s"
        except Exception as exc:  # noqa: BLE001 - any failure means "unavailable"
            return type(exc).__name__
        return None

    async def _publish(self) -> None:
        status = SERVING if self.healthy else NOT_SERVING
        for name in self._names:
            await self._servicer.set(name, status)

    async def run(self, stop: asyncio.Event) -> None:
        """Probe until `stop` is set."""
        while not stop.is_set():
            try:
                await self.check_once()
            except Exception:  # noqa: BLE001 - the monitor itself must never die
                logger.exception("health check failed")
            await pause(stop, self._interval)

    def supervise(
        self, name: str, body: Callable[[asyncio.Event], Awaitable[None]], stop: asyncio.Event
    ) -> asyncio.Task[None]:
        """Start a background task; if it ever ends before `stop`, report NOT_SERVING."""
        task = asyncio.create_task(body(stop), name=name)
        task.add_done_callback(lambda t: asyncio.ensure_future(self._ended(name, t, stop)))
        return task

    async def _ended(self, name: str, task: asyncio.Task[None], stop: asyncio.Event) -> None:
        if stop.is_set():
            return
        if task.cancelled():
            reason = "cancelled"
        elif (exc := task.exception()) is not None:
            reason = f"{type(exc).__name__}: {exc}"
            logger.error("background task %s died", name, exc_info=exc)
        else:
            reason = "returned"
        logger.error("background task %s stopped (%s); reporting NOT_SERVING", name, reason)
        self._dead[name] = reason
        await self._servicer.set(TASK_PREFIX + name, NOT_SERVING)
        await self._publish()
