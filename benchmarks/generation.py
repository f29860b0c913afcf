"""Generation: first token, tokens/s and queueing, against raw llama.cpp in the same run.

    python benchmarks/generation.py [--rounds 3] [--max-tokens 128] [--clients 10]
                                    [--transformers] [--skip-platform]

1. In process, on a 5-chunk Normans context and the packaged SmolLM2 GGUF:
   - raw llama.cpp (`llama_cpp.Llama.create_completion`, greedy, streamed) on the exact
     completion prompt the answerer builds: the baseline;
   - the answerer over the local provider with the llama_cpp runtime (what the
     generation service runs), and with --transformers the transformers runtime too.
   Time to first token (prompt evaluation included) and decode tokens/s, median of
   --rounds, each as a ratio to raw llama.cpp.
2. The platform as `make run` starts it (skip with --skip-platform): 8 Normans
   paragraphs uploaded, then
   - one /query/stream at a time: first `delta` after the response headers, which the
     gateway sends once retrieval is done, so this is "first token after retrieval":
     the same question again (llama.cpp reuses the whole evaluated prompt), then a new
     Normans question each round (its own 5-chunk context: cold but for the prompt's head);
   - --clients concurrent /query calls (default capacity: 4 generating + 4 queued):
     each is answered, or refused with 429 at once; none may run past its deadline.
The last line of stdout is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.common.types import ScoredChunk  # noqa: E402
from services.generation.answering import Answerer  # noqa: E402
from services.generation.providers.base import LLMProvider, Prompt  # noqa: E402
from services.generation.providers.local import LocalGGUFProvider, default_model_path  # noqa: E402
from tests.e2e.conftest import stack_config, start_stack  # noqa: E402
from tests.support.datasets import datasets_dir, read_jsonl  # noqa: E402

QUESTION = "From which countries did the Norse originate?"
DEADLINE_S = 120.0  # the gateway's generation deadline (RAGCHAT_GENERATION_TIMEOUT_S)


def _normans(limit: int) -> list[dict[str, Any]]:
    return read_jsonl(datasets_dir() / "squad2-normans" / "corpus.jsonl")[:limit]


def _context(round_: int) -> list[ScoredChunk]:
    """5 Normans paragraphs, different ones each round: llama.cpp reuses the evaluated
    prefix of the previous prompt, so a repeated prompt would skip its evaluation."""
    docs = _normans(40)[5 * round_ : 5 * round_ + 5]
    return [
        ScoredChunk(chunk_id=f"{doc['_id']}:0", document_id=doc["_id"], text=doc["text"],
                    title=doc["title"], source=f"{doc['_id']}.txt", ordinal=0,
                    score=1.0 - n / 10)
        for n, doc in enumerate(docs)
    ]


def _prompt(round_: int, max_tokens: int) -> Prompt:
    capture = _Capture()
    Answerer(capture).answer(QUESTION, _context(round_), [], max_tokens)
    assert capture.prompt is not None
    return capture.prompt


class _Capture(LLMProvider):
    """Records the prompt the answerer builds; answers nothing."""

    prompt: Prompt | None = None

    @property
    def model_name(self) -> str:
        return "capture"

    def complete(self, prompt: Prompt, max_tokens: int) -> str:
        self.prompt = prompt
        return ""

    def stream(self, prompt: Prompt, max_tokens: int) -> Iterator[str]:
        self.prompt = prompt
        return iter(())


def _timed(deltas: Iterable[object]) -> dict[str, float]:
    """Time to first text and decode rate of a stream of text deltas (one per token)."""
    start = time.perf_counter()
    stamps = [time.perf_counter() for delta in deltas if isinstance(delta, str) and delta]
    if not stamps:
        return {"ttft_s": float("nan"), "tokens_per_s": float("nan"), "tokens": 0}
    decode = stamps[-1] - stamps[0]
    rate = (len(stamps) - 1) / decode if decode > 0 else float("nan")
    return {"ttft_s": stamps[0] - start, "tokens_per_s": rate, "tokens": len(stamps)}


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(run[key] for run in runs), 4) for key in runs[0]}


def in_process(rounds: int, max_tokens: int, transformers: bool) -> dict[str, dict[str, float]]:
    """Raw llama.cpp against the answerer over each local runtime, same prompt."""
    from llama_cpp import Llama

    threads = os.cpu_count() or 1  # as the provider runs it
    raw = Llama(model_path=default_model_path(), n_ctx=4096, n_threads=threads,
                n_threads_batch=threads, flash_attn=True, verbose=False)

    def raw_stream(round_: int) -> Iterator[str]:
        completion = _prompt(round_, max_tokens).completion
        for part in raw.create_completion(completion, max_tokens=max_tokens, temperature=0.0,
                                          top_k=1, stream=True):
            yield part["choices"][0]["text"] or " "  # one chunk per token, even partial UTF-8

    runs: dict[str, Callable[[int], Iterable[object]]] = {"raw_llama_cpp": raw_stream}
    runtimes = ["llama_cpp", "transformers"] if transformers else ["llama_cpp"]
    for runtime in runtimes:
        answerer = Answerer(LocalGGUFProvider(runtime=runtime))
        answerer.answer(QUESTION, _context(0), [], 4)  # load the weights outside the timing
        runs[runtime] = lambda r, a=answerer: a.stream(QUESTION, _context(r), [], max_tokens)
    results: dict[str, dict[str, float]] = {}
    for name, run in runs.items():
        list(run(rounds))  # warm-up on other paragraphs: thread pools, allocations
        results[name] = _median([_timed(run(r)) for r in range(rounds)])
        print(f"{name}: {results[name]}", flush=True)
    base = results["raw_llama_cpp"]
    for figures in results.values():
        figures["tokens_per_s_vs_raw"] = round(figures["tokens_per_s"] / base["tokens_per_s"], 3)
        figures["ttft_vs_raw"] = round(figures["ttft_s"] / base["ttft_s"], 3)
    return results


def _new_questions(docs: list[dict[str, Any]], count: int) -> list[str]:
    """Answerable Normans questions on the uploaded paragraphs, one per paragraph in
    turn: each retrieves its own context, so only the prompt's fixed head is cached."""
    ids = {doc["_id"] for doc in docs}
    rows = read_jsonl(datasets_dir() / "squad2-normans" / "answers.jsonl")
    by_doc: dict[str, list[str]] = {}
    for row in rows:
        if not row["is_impossible"] and row["gold_passage"] in ids and row["question"] != QUESTION:
            by_doc.setdefault(row["gold_passage"], []).append(row["question"])
    turns = [qs[n] for n in range(max(map(len, by_doc.values()))) for qs in by_doc.values()
             if n < len(qs)]
    return turns[:count]


def _first_delta_after_headers(http: httpx.Client, question: str = QUESTION) -> float:
    """Seconds from the response headers to the first `delta`, or to `done` when the
    model's first token ends an empty answer (the small model does that at times)."""
    with http.stream("POST", "/query/stream", json={"question": question}) as resp:
        resp.raise_for_status()
        headers_at = time.perf_counter()
        first = None
        for line in resp.iter_lines():  # read to the end: the answer completes as a user sees it
            if first is None and line.startswith(("event: delta", "event: done")):
                first = time.perf_counter() - headers_at
    if first is None:
        raise RuntimeError("the stream sent neither delta nor done")
    return first


def _prompt_tokens(http: httpx.Client, question: str) -> int:
    """The prompt's size in model tokens, as /v1/chat/completions reports it."""
    resp = http.post("/v1/chat/completions", json={
        "model": "ragchat", "max_tokens": 1,
        "messages": [{"role": "user", "content": question}]})
    resp.raise_for_status()
    return int(resp.json()["usage"]["prompt_tokens"])


def _burst(base_url: str, clients: int) -> list[tuple[int, float]]:
    def call(_: int) -> tuple[int, float]:
        start = time.perf_counter()
        resp = httpx.post(f"{base_url}/query", json={"question": QUESTION}, timeout=DEADLINE_S)
        return resp.status_code, time.perf_counter() - start

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(call, range(clients)))


def platform(rounds: int, clients: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(stack_config(Path(tmp), {}))
        try:
            http = httpx.Client(base_url=stack.base_url, timeout=DEADLINE_S)
            docs = _normans(8)
            for doc in docs:
                job = http.post("/upload", files={
                    "file": (f"{doc['_id']}.txt", doc["text"].encode(), "text/plain")}).json()
                while http.get(f"/jobs/{job['job_id']}").json()["status"] not in ("indexed",
                                                                                    "failed"):
                    time.sleep(0.3)
            _first_delta_after_headers(http)  # warm-up
            ttfts = [_first_delta_after_headers(http) for _ in range(rounds)]
            questions = _new_questions(docs, rounds)
            fresh = [_first_delta_after_headers(http, q) for q in questions]
            fresh_tokens = [_prompt_tokens(http, q) for q in questions]  # cached prefix now
            burst = _burst(stack.base_url, clients)
        finally:
            stack.stop()
    answered = [s for code, s in burst if code == 200]
    refused = [s for code, s in burst if code == 429]
    result = {
        "ttft_after_retrieval_s": round(statistics.median(ttfts), 3),
        "ttft_after_retrieval_new_question_s": round(statistics.median(fresh), 3),
        "ttft_after_retrieval_new_question_max_s": round(max(fresh), 3),
        "new_question_prompt_tokens": fresh_tokens,
        "burst_clients": clients, "answered": len(answered), "refused_429": len(refused),
        "other": sorted({code for code, _ in burst} - {200, 429}),
        "answered_max_s": round(max(answered), 2) if answered else None,
        "refused_max_s": round(max(refused), 3) if refused else None,
        "deadline_s": DEADLINE_S,
    }
    print(f"platform: {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--transformers", action="store_true",
                        help="also time the transformers runtime (slow)")
    parser.add_argument("--skip-platform", action="store_true")
    args = parser.parse_args()
    summary: dict[str, Any] = {
        "in_process": in_process(args.rounds, args.max_tokens, args.transformers)}
    if not args.skip_platform:
        summary["platform"] = platform(args.rounds, args.clients)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
