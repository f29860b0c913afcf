"""Process entry point shared by every service: logging, telemetry, asyncio."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from services.common.logging import setup_logging
from services.common.settings import CommonSettings
from services.common.telemetry import setup_telemetry, shutdown_telemetry

S = TypeVar("S", bound=CommonSettings)
logger = logging.getLogger(__name__)
_abandoned_work = False


def abandon_running_threads() -> None:
    """Ask for a hard exit once shutdown is done: a thread still busy with abandoned work
    (its job already handed back) must not hold the process, or crash it at exit."""
    global _abandoned_work
    _abandoned_work = True


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile (background loops)."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


def run_service(
    name: str,
    settings_factory: Callable[[], S],
    body: Callable[[S], Coroutine[Any, Any, None]],
) -> None:
    """Build settings, set up logging and tracing, then run `body` until it returns."""
    from services.common.serving_config import ServingConfigError

    try:
        settings = settings_factory()
    except ServingConfigError as exc:  # a clear line, not a traceback, then exit 2
        logging.basicConfig(level=logging.ERROR)
        logger.error("%s cannot start: %s", name, exc)
        sys.exit(2)
    setup_logging(name, settings.log_level, settings.log_format)
    setup_telemetry(name, settings)
    try:
        asyncio.run(body(settings))
    finally:
        shutdown_telemetry()
        logger.info("%s stopped", name)
    if _abandoned_work:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
