"""python -m services.gateway: the REST API (OpenAPI at /docs)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from services.common.runner import run_service
from services.gateway.app import create_app
from services.gateway.auth.setup import AuthMisconfigured
from services.gateway.config import GatewaySettings


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM after draining (exit -15); we want a clean exit 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        yield


async def _serve(settings: GatewaySettings) -> None:
    try:
        app = create_app(settings)
    except AuthMisconfigured as exc:
        logging.getLogger(__name__).error("gateway not started: %s", exc)
        raise SystemExit(2) from None
    # SIGTERM/SIGINT: stop accepting, drain in-flight requests, then return.
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    await _Server(config).serve()


def main() -> None:
    run_service("gateway", GatewaySettings, _serve)


if __name__ == "__main__":
    main()
