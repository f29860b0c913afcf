"""Overload: how fast a full gateway refuses, against /livez in the same burst.

    python benchmarks/overload.py [--rounds 3] [--clients 12] [--llm-delay-s 2]

Starts the platform as `make run` does, its generation service on the openai provider
against the tests' fake OpenAI server (each answer takes --llm-delay-s), with the
default capacity (RAGCHAT_MAX_CONCURRENT_GENERATIONS + RAGCHAT_GENERATION_QUEUE).
Each round sends --clients /v1/chat/completions at once, plus a third as many GET
/livez (the baseline: the cheapest request, under the same load), and prints the
latency of the answers, of the 429s and of /livez. The last line of stdout is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.conftest import stack_config, start_stack  # noqa: E402
from tests.support.fake_openai import ChatRequest, FakeOpenAI  # noqa: E402

KEY = "sk-benchmark-key-0001"
QUESTION = {"role": "user", "content": "When does the relay trip?"}


def _round(base_url: str, clients: int) -> dict[str, list[float]]:
    body = {"model": "ragchat", "messages": [QUESTION]}

    def call(i: int) -> tuple[str, float]:
        start = time.monotonic()
        if i >= clients:
            httpx.get(f"{base_url}/livez", timeout=120)
            return "livez", time.monotonic() - start
        resp = httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=120)
        return str(resp.status_code), time.monotonic() - start

    total = clients + max(1, clients // 3)
    with ThreadPoolExecutor(total) as pool:
        results = list(pool.map(call, range(total)))
    out: dict[str, list[float]] = {}
    for kind, seconds in results:
        out.setdefault(kind, []).append(seconds)
    return out


def _describe(times: list[float]) -> str:
    p50, worst = statistics.median(times) * 1000, max(times) * 1000
    return f"x{len(times)} p50 {p50:.0f} ms, max {worst:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--llm-delay-s", type=float, default=2.0)
    args = parser.parse_args()

    def reply(request: ChatRequest) -> str:
        time.sleep(args.llm_delay_s)
        return "It trips at 40 amperes [1]."

    rounds: list[dict[str, Any]] = []
    with FakeOpenAI(api_key=KEY, reply=reply) as fake, tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(stack_config(Path(tmp), {
            "RAGCHAT_LLM_PROVIDER": "openai", "RAGCHAT_OPENAI_BASE_URL": fake.base_url,
            "RAGCHAT_OPENAI_API_KEY": KEY}))
        try:
            http = httpx.Client(base_url=stack.base_url, timeout=120)
            text = b"The ZX-4491 relay trips at 40 amperes."
            job = http.post("/upload", files={"file": ("relay.txt", text, "text/plain")}).json()
            while http.get(f"/jobs/{job['job_id']}").json()["status"] != "indexed":
                time.sleep(0.3)
            for n in range(args.rounds):
                result = _round(stack.base_url, args.clients)
                rounds.append(result)
                print(f"round {n}: " + "; ".join(
                    f"{kind} {_describe(times)}" for kind, times in sorted(result.items())))
        finally:
            stack.stop()
    refused = [t for r in rounds for t in r.get("429", [])]
    livez = [t for r in rounds for t in r["livez"]]
    summary = {
        "answered": sum(len(r.get("200", [])) for r in rounds),
        "refused": len(refused),
        "refused_p50_ms": round(statistics.median(refused) * 1000) if refused else None,
        "livez_p50_ms": round(statistics.median(livez) * 1000),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
