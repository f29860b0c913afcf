"""Process entry point shared by every service: logging, telemetry, asyncio."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from services.common.logging import setup_logging
from services.common.settings import CommonSettings
from services.common.telemetry import setup_telemetry, shutdown_telemetry

S = TypeVar("S", bound=CommonSettings)
logger = logging.getLogger(__name__)


def run_service(
    name: str,
    settings_factory: Callable[[], S],
    body: Callable[[S], Coroutine[Any, Any, None]],
) -> None:
    """Build settings, set up logging and tracing, then run `body` until it returns."""
    settings = settings_factory()
    setup_logging(name, settings.log_level, settings.log_format)
    setup_telemetry(name, settings)
    try:
        asyncio.run(body(settings))
    finally:
        shutdown_telemetry()
        logger.info("%s stopped", name)
