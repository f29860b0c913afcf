"""Authentication overhead: the same request keyless, with a cached key, and uncached.

    python benchmarks/auth_overhead.py [--requests 400] [--rounds 3]

Starts an embedded PostgreSQL and five gateways in this process (uvicorn on threads):
keyless (the `make run` default) twice (their difference is the noise floor), auth
required with the key cache on (the default 10 s), auth required with the cache off
(a PostgreSQL lookup on every request), and auth required with the rate limit counted
in PostgreSQL (RAGCHAT_RATE_LIMIT_BACKEND=postgres: one statement per request).
It sends --rounds x --requests GET /v1/models (answered by the gateway alone, no
backend) to each, one request to each in turn, and prints the latency of each against keyless in
the same run. The last line of stdout is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devstack.embedded import free_port, start_postgres  # noqa: E402
from services.gateway.app import create_app  # noqa: E402
from services.gateway.config import GatewaySettings  # noqa: E402

ADMIN = "benchmark-admin-token-77c1"


def _serve(settings: GatewaySettings) -> tuple[uvicorn.Server, str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_config=None, access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def _latency(client: httpx.Client, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    resp = client.get("/v1/models", headers=headers)
    elapsed = (time.perf_counter() - start) * 1000
    assert resp.status_code == 200, resp.text
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        postgres = start_postgres(Path(tmp) / "pg")
        try:
            results = _run(postgres.dsn, args.requests, args.rounds)
        finally:
            postgres.stop()
    print(json.dumps(results))


def _run(dsn: str, requests: int, rounds: int) -> dict[str, Any]:
    common = {"database_url": dsn, "admin_token": ADMIN, "rate_limit_per_minute": 0}
    variants = {
        "keyless": GatewaySettings(),
        "keyless_again": GatewaySettings(),
        "key_cached": GatewaySettings(auth_required=True, **common),
        "key_uncached": GatewaySettings(auth_required=True, auth_cache_s=0, **common),
        "key_pg_limits": GatewaySettings(auth_required=True, **{
            **common, "rate_limit_backend": "postgres", "rate_limit_per_minute": 10**9}),
    }
    servers = {name: _serve(settings) for name, settings in variants.items()}
    clients = {name: httpx.Client(base_url=url) for name, (_, url) in servers.items()}
    made = clients["key_cached"].post("/admin/api-keys", json={"tenant": "bench", "name": "b"},
                                      headers={"Authorization": f"Bearer {ADMIN}"})
    key = {"Authorization": f"Bearer {made.json()['key']}"}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    headers = {name: {} if name.startswith("keyless") else key for name in variants}
    for name, client in clients.items():  # warm up connections, caches and code paths
        for _ in range(20):
            _latency(client, headers[name])
    # Round-robin, one request each in turn: the machine's noise falls on all alike.
    for _ in range(rounds * requests):
        for name, client in clients.items():
            samples[name].append(_latency(client, headers[name]))
    for client in clients.values():
        client.close()
    for server, _ in servers.values():
        server.should_exit = True
    base = statistics.median(samples["keyless"])
    results: dict[str, Any] = {}
    for name, values in samples.items():
        values.sort()
        p50, p99 = statistics.median(values), values[int(len(values) * 0.99) - 1]
        results[name] = {"p50_ms": round(p50, 3), "p99_ms": round(p99, 3),
                         "p50_vs_keyless": round(p50 / base, 2)}
        print(f"{name:13s} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  x{p50 / base:.2f} of keyless")
    return results


if __name__ == "__main__":
    main()
