"""python -m services.memory: the conversation memory gRPC service."""

from __future__ import annotations

import asyncio

from services.common.db import postgres_probe, prepare_database
from services.common.grpc_server import serve_forever
from services.common.runner import run_service
from services.memory import servicer
from services.memory.config import DEFAULT_PORT, MemorySettings
from services.memory.store import SessionStore


async def _serve(settings: MemorySettings) -> None:
    pool = await asyncio.to_thread(prepare_database, settings)
    store = SessionStore(pool)

    async def close() -> None:
        await asyncio.to_thread(pool.close)

    await serve_forever(
        settings,
        DEFAULT_PORT,
        lambda s: servicer.register(s, store),
        close,
        background={"request-log": lambda stop: store.requests.purge_every(3600, stop)},
        probes=[postgres_probe(pool, settings.db_connect_timeout_s)],
    )


def main() -> None:
    run_service("memory", MemorySettings, _serve)


if __name__ == "__main__":
    main()
