"""What reranking adds to a search: the blend reranker at sentence level against the
passage-level blend and the plain hybrid search, on the same queries in the same run.

    python benchmarks/rerank_latency.py [--dataset ../shared/datasets/squad2-normans]

Indexes the corpus like the evaluation does (cached), takes each query's hybrid top
`--depth` candidates, then times, interleaved query by query, the hybrid search itself
and each reranker on those candidates, with the embedding model uncached on both (as
the retrieval service runs them). Prints the median milliseconds per search and the ratio
to the passage-level blend; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mlops.evaluate_rag.__main__ import parse_args as eval_args
from mlops.evaluate_rag.context import prepared
from services.retrieval.rerank import BlendReranker, Reranker
from services.retrieval.search import Retriever

DEFAULT_DATASET = Path(__file__).resolve().parents[1].parent / "shared/datasets/squad2-normans"


def _ms(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(DEFAULT_DATASET))
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--depth", type=int, default=20, help="candidates re-ranked")
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    ev = eval_args(["--dataset", args.dataset, "--mode", "hybrid", "--reranker", "none",
                    "--no-progress"])
    with prepared(ev, args.depth) as ctx:
        cached = ctx.retriever
        model = getattr(cached._embeddings, "_inner", cached._embeddings)  # noqa: SLF001
        retriever = Retriever(model, cached._store, cached.policy)  # noqa: SLF001
        rerankers: dict[str, Reranker] = {
            "blend(passages)": BlendReranker(model, sentences=False),
            "blend(sentences)": BlendReranker(model),
        }
        queries = list(ctx.dataset.queries.values())[: args.queries]
        samples: dict[str, list[float]] = {"hybrid search": [], **{n: [] for n in rerankers}}
        for i, query in enumerate(queries):
            chunks = retriever.search(query, top_k=args.depth, mode="hybrid").chunks
            timings = {"hybrid search": _ms(
                lambda q=query: retriever.search(q, top_k=args.depth, mode="hybrid"))}
            for name, reranker in rerankers.items():
                timings[name] = _ms(lambda r=reranker, q=query, c=chunks: r.rerank(q, c))
            if i >= args.warmup:
                for name, ms in timings.items():
                    samples[name].append(ms)
    medians = {name: round(statistics.median(s), 1) for name, s in samples.items()}
    base = medians["blend(passages)"]
    for name, ms in medians.items():
        print(f"{name:18} {ms:8.1f} ms median  ({ms / base:.2f}x blend(passages))",
              file=sys.stderr)
    print(json.dumps({"queries": len(samples["hybrid search"]), "depth": args.depth,
                      "median_ms": medians,
                      "ratio_to_passage_blend": {n: round(m / base, 3)
                                                 for n, m in medians.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
