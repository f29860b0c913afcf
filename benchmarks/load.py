"""Throughput of POST /search under concurrent clients, against the in-process rate.

    python benchmarks/load.py [--clients 50] [--seconds 20] [--mode hybrid]

Indexes SciFact like search_latency.py (cached), serves the retrieval service and the
gateway as search_latency.py does, then drives /search from a separate client process
(asyncio + httpx, one connection per client) for a bounded time; the gateway runs in
a process of its own, as deployed. The in-process rate is
measured in the same run first: the retriever called in a loop from one thread, and
from as many threads as the service's search workers. The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))



def summary(latencies: list[float], errors: int, seconds: float) -> dict[str, float]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 \
        else [latencies[0] if latencies else 0.0] * 99
    return {"requests": len(latencies), "errors": errors,
            "rps": round(len(latencies) / seconds, 1),
            "p50_ms": round(statistics.median(latencies), 1) if latencies else 0.0,
            "p99_ms": round(cuts[98], 1)}


async def drive(url: str, queries: list[str], clients: int, seconds: float,
                body: dict[str, Any]) -> dict[str, float]:
    """`clients` concurrent loops posting /search until the time is up."""
    import httpx

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client(index: int, http: httpx.AsyncClient) -> None:
        nonlocal errors
        turn = index
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                reply = await http.post("/search",
                                        json={**body, "query": queries[turn % len(queries)]})
                ok = reply.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                errors += 1
            turn += clients

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(i, http) for i in range(clients)))
        elapsed = time.perf_counter() - started
    return summary(latencies, errors, elapsed)


def in_process(call: Callable[[str], object], queries: list[str], threads: int,
               seconds: float) -> dict[str, float]:
    """The retriever's own rate from `threads` threads calling it in a loop."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    def loop(index: int) -> None:
        turn = index
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            call(queries[turn % len(queries)])
            latencies.append((time.perf_counter() - started) * 1000)
            turn += threads

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return summary(latencies, 0, time.perf_counter() - started)


@contextmanager
def gateway_process(retriever: Any) -> Iterator[int]:
    """The retrieval service in this process and the gateway in its own, as deployed
    (one process would make both share one GIL); yields the gateway's HTTP port."""
    import httpx
    from search_latency import serving

    from devstack.postgres import free_port

    with serving(retriever) as (grpc_port, _):
        port = free_port()
        env = {**os.environ, "RAGCHAT_RETRIEVAL_TARGET": f"127.0.0.1:{grpc_port}",
               "RAGCHAT_HTTP_PORT": str(port), "RAGCHAT_LOG_LEVEL": "WARNING"}
        gateway = subprocess.Popen([sys.executable, "-m", "services.gateway"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/livez").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or gateway.poll() is not None:
                    raise RuntimeError("the gateway did not start")
                time.sleep(0.2)
            yield port
        finally:
            gateway.terminate()
            gateway.wait(30)


def run_clients(url: str, queries: list[str], args: argparse.Namespace) -> dict[str, float]:
    """The load from a process of its own, so clients never share the servers' GIL."""
    spec = json.dumps({"url": url, "queries": queries, "clients": args.clients,
                       "seconds": args.seconds,
                       "body": {"mode": args.mode, "top_k": args.top_k}})
    proc = subprocess.run([sys.executable, __file__, "--client"], input=spec, text=True,
                          capture_output=True, timeout=args.seconds + 120, check=True)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--mode", default="hybrid", choices=("dense", "keyword", "hybrid"))
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        spec = json.loads(sys.stdin.read())
        print(json.dumps(asyncio.run(drive(spec["url"], spec["queries"], spec["clients"],
                                           spec["seconds"], spec["body"]))))
        return 0
    from search_latency import DEFAULT_DATASET, service_retriever

    from mlops.evaluate_rag.__main__ import parse_args as eval_args
    from mlops.evaluate_rag.context import prepared
    from services.retrieval.config import RetrievalSettings

    ev = eval_args(["--dataset", args.dataset or str(DEFAULT_DATASET), "--split", "train",
                    "--mode", args.mode])
    with prepared(ev, args.top_k) as ctx, service_retriever(ctx) as retriever:
        queries = list(ctx.dataset.queries.values())

        def call(query: str) -> object:
            return retriever.search(query, top_k=args.top_k, mode=args.mode)

        seconds = min(args.seconds, 10.0)
        workers = RetrievalSettings().search_workers()  # as the service runs them
        for query in queries[:60]:  # settle the database and the model first
            call(query)
        report: dict[str, Any] = {
            "mode": args.mode, "clients": args.clients, "seconds": args.seconds,
            "in_process": in_process(call, queries, 1, seconds),
            "in_process_threads": in_process(call, queries, workers, seconds),
        }
        with gateway_process(retriever) as http_port:
            report["rest"] = run_clients(f"http://127.0.0.1:{http_port}", queries, args)
    report["rest_vs_in_process"] = round(report["rest"]["rps"] / report["in_process"]["rps"], 2)
    for name in ("in_process", "in_process_threads", "rest"):
        figures = report[name]
        print(f"{name:<20} {figures['rps']:>8.1f} req/s  p50 {figures['p50_ms']:>7.1f} ms  "
              f"p99 {figures['p99_ms']:>7.1f} ms  errors {figures['errors']}")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
