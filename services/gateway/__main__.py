"""python -m services.gateway: the REST API (OpenAPI at /docs)."""

from __future__ import annotations

import uvicorn

from services.common.runner import run_service
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings


async def _serve(settings: GatewaySettings) -> None:
    # uvicorn handles SIGTERM/SIGINT itself: it stops accepting, drains, then returns.
    config = uvicorn.Config(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    await uvicorn.Server(config).serve()


def main() -> None:
    run_service("gateway", GatewaySettings, _serve)


if __name__ == "__main__":
    main()
