"""Search latency per mode: in-process call vs gRPC vs the REST gateway, same queries.

    python benchmarks/search_latency.py [--dataset ../shared/datasets/scifact] [--queries 200]

Indexes the corpus like the evaluation does (cached), serves the retrieval service
(grpc.aio, port 0) and the gateway (uvicorn, port 0) in a background thread, then times
the same queries three ways. Prints p50/p99 per mode and path and the overhead ratio
against the in-process call; the last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import httpx
import uvicorn
from ragchat.retrieval.v1 import retrieval_pb2, retrieval_pb2_grpc

from mlops.evaluate_rag.__main__ import parse_args as eval_args
from mlops.evaluate_rag.context import EvalContext, prepared
from services.common.db import open_pool
from services.common.grpc_server import start_server
from services.common.tenancy import DEFAULT_TENANT, TENANT_METADATA_KEY
from services.common.vectorstore.pgvector import PgVectorStore
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.retrieval import servicer
from services.retrieval.batching import BatchingEmbeddings
from services.retrieval.config import RetrievalSettings
from services.retrieval.search import Retriever

MODES = {"dense": retrieval_pb2.SEARCH_MODE_DENSE, "keyword": retrieval_pb2.SEARCH_MODE_KEYWORD,
         "hybrid": retrieval_pb2.SEARCH_MODE_HYBRID}
DEFAULT_DATASET = Path(__file__).resolve().parents[1].parent / "shared/datasets/scifact"


@contextmanager
def service_retriever(ctx: EvalContext) -> Iterator[Retriever]:
    """The evaluation index searched as the retrieval service searches it: a pool of the
    service's size, ef_search from the settings, every query embedded by the model
    (batched), never read from the evaluation's embedding cache, which would make
    whichever path runs first the only one to pay for the model."""
    settings = RetrievalSettings()
    evaluated = ctx.retriever
    store = evaluated._store  # noqa: SLF001 - the evaluation's store, to reach its database
    if not isinstance(store, PgVectorStore):
        yield evaluated
        return
    model = getattr(evaluated._embeddings, "_inner", evaluated._embeddings)  # noqa: SLF001
    if settings.embedding_threads:  # as the service sets it (services.common.components)
        import torch

        torch.set_num_threads(settings.embedding_threads)
    pool = open_pool(store.pool.conninfo, max_size=settings.db_pool_max)
    try:
        wide = PgVectorStore(pool, settings.bm25_k1, settings.bm25_b, settings.hnsw_ef_search)
        yield Retriever(BatchingEmbeddings(model), wide, evaluated.policy)
    finally:
        pool.close()


@contextmanager
def serving(retriever: Retriever) -> Iterator[tuple[int, int]]:
    """The retrieval service and the gateway on free ports; yields (grpc, http) ports."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    ports: dict[str, int] = {}
    stop = asyncio.Event()

    async def main() -> None:
        running = await start_server("127.0.0.1:0",
                                     lambda s: servicer.register(
                                         s, retriever,
                                         workers=RetrievalSettings().search_workers()))
        settings = GatewaySettings(retrieval_target=f"127.0.0.1:{running.port}")
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0,
                                               log_level="warning", lifespan="on"))
        web = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        ports.update(grpc=running.port,
                     http=server.servers[0].sockets[0].getsockname()[1])
        ready.set()
        await stop.wait()
        server.should_exit = True
        await web
        await running.stop(0)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(60):
        raise RuntimeError("servers did not start")
    try:
        yield ports["grpc"], ports["http"]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)


def timed(call: Callable[[str], object], queries: list[str], warmup: int) -> list[float]:
    for query in queries[:warmup]:
        call(query)
    samples = []
    for query in queries:
        started = time.perf_counter()
        call(query)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": round(statistics.median(samples), 2), "p99": round(cuts[98], 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(DEFAULT_DATASET))
    parser.add_argument("--split", default="train")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--top-k", type=int, default=10)
    args = parser.parse_args()
    ev = eval_args(["--dataset", args.dataset, "--split", args.split, "--mode", "hybrid"])
    results: dict[str, dict[str, dict[str, float]]] = {}
    with prepared(ev, args.top_k) as ctx, service_retriever(ctx) as retriever, \
            serving(retriever) as (grpc_port, http_port):
        queries = list(ctx.dataset.queries.values())[: args.queries]
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        stub = retrieval_pb2_grpc.RetrievalServiceStub(channel)
        http = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=30)
        for mode in MODES:  # settle the database and the model before anything is timed
            for query in queries[: args.warmup * 3]:
                retriever.search(query, top_k=args.top_k, mode=mode)
        for mode, pb_mode in MODES.items():
            paths = {
                "direct": lambda q, m=mode: retriever.search(q, top_k=args.top_k, mode=m),
                "grpc": lambda q, m=pb_mode: stub.Search(
                    retrieval_pb2.SearchRequest(query=q, top_k=args.top_k, mode=m),
                    metadata=((TENANT_METADATA_KEY, DEFAULT_TENANT),)),
                "rest": lambda q, m=mode: http.post(
                    "/search", json={"query": q, "top_k": args.top_k, "mode": m}
                ).raise_for_status(),
            }
            results[mode] = {name: percentiles(timed(call, queries, args.warmup))
                             for name, call in paths.items()}
        http.close()
        channel.close()
    print(f"{'mode':<8} {'path':<7} {'p50 ms':>8} {'p99 ms':>8} {'p50 vs direct':>14}")
    for mode, paths in results.items():
        base = paths["direct"]["p50"]
        for name, figures in paths.items():
            figures["overhead"] = round(figures["p50"] / base, 2)
            print(f"{mode:<8} {name:<7} {figures['p50']:>8.2f} {figures['p99']:>8.2f} "
                  f"{figures['overhead']:>13.2f}x")
    print(json.dumps({"queries": len(queries), "top_k": args.top_k, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
