"""Ingestion throughput, fairness and memory, end to end: S3 -> SQS -> worker -> pgvector.

    python benchmarks/ingest_throughput.py [--docs 200] [--large-mb 4] [--small]

Starts an embedded PostgreSQL and moto, and runs the real IndexWorker loops
(RAGCHAT_WORKER_CONCURRENCY of them, sharing one EmbeddingBatcher) in this process.

1. Fairness and memory: uploads one large text file (SciFact abstracts, repeated to
   `--large-mb`), then, once it is being indexed, a 62-byte file; reports the small
   file's time to `indexed`, the large file's duration against a raw encode of its
   chunks, and this process's peak RSS (model loaded, before anything is timed: the
   figure before the large file).
2. Throughput: uploads `--docs` documents (`--per-doc` SciFact abstracts each), starts
   the workers and times until all are indexed; a raw `model.encode` of the same chunk
   texts (same model, same batch size), timed before and after, gives the ratio.

The last line of stdout is JSON. `--small` is a quick smoke run (CI runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from psycopg_pool import ConnectionPool

from devstack.embedded import ensure_bucket_and_queue, start_moto, start_postgres
from services.common.aws import s3_client, sqs_client
from services.common.db import migrate, open_pool
from services.common.embeddings import SentenceTransformerEmbeddings
from services.common.tenancy import DEFAULT_TENANT, tenant_scope
from services.common.vectorstore.pgvector import PgVectorStore
from services.ingest.adapters import S3BlobStore, SqsJobQueue
from services.ingest.batching import EmbeddingBatcher
from services.ingest.chunking import TokenChunker
from services.ingest.config import IngestSettings
from services.ingest.jobs import JobRepository
from services.ingest.pipeline import IndexingPipeline
from services.ingest.submission import Submissions
from services.ingest.worker import IndexWorker

DEFAULT_DATASET = Path(__file__).resolve().parents[1].parent / "shared/datasets/scifact"
TINY = b"Tiny note: harbour master on call, phone 555-0100, ask Annie.\n"  # 62 bytes


class CpuMeter:
    """CPU seconds used by this process, moto and the PostgreSQL server together.

    Other processes on a shared machine change wall-clock figures a lot, CPU time
    much less, so the benchmark reports both.
    """

    def __init__(self, moto_pid: int, pg_data: Path) -> None:
        pid = int((pg_data / "postmaster.pid").read_text().split()[0])
        self._roots = [psutil.Process(), psutil.Process(moto_pid), psutil.Process(pid)]

    def seconds(self) -> float:
        return sum(self.split())

    def split(self) -> tuple[float, float, float]:
        """CPU seconds of (this process, moto, PostgreSQL)."""
        totals = []
        for root in self._roots:
            total = 0.0
            for proc in [root, *(root.children(recursive=True) if root.pid != os.getpid()
                                 else [])]:
                try:
                    times = proc.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                total += times.user + times.system
            totals.append(total)
        return totals[0], totals[1], totals[2]


class Bench:
    """The ingest components wired as services/ingest/__main__.py wires them."""

    def __init__(self, settings: IngestSettings, pool: ConnectionPool, cpu: CpuMeter) -> None:
        self.settings, self.pool, self.cpu = settings, pool, cpu
        self.embeddings = SentenceTransformerEmbeddings(batch_size=settings.embed_batch_size)
        store = PgVectorStore(pool)
        self.chunker = TokenChunker.for_embeddings(
            self.embeddings, settings.chunk_tokens, settings.chunk_overlap_tokens)
        self.batcher = EmbeddingBatcher(self.embeddings, settings.embed_batch_size)
        pipeline = IndexingPipeline(self.embeddings, self.chunker, store, batcher=self.batcher,
                                    slice_size=settings.embed_slice_size)
        self.repo = JobRepository(pool)
        blobs = S3BlobStore(s3_client(settings), settings.s3_bucket)
        queue = SqsJobQueue(sqs_client(settings), settings.sqs_queue_url)
        self.submissions = Submissions(self.repo, blobs, queue, store, settings.max_upload_bytes)
        self.worker = IndexWorker(self.repo, blobs, queue, pipeline, settings)

    @contextmanager
    def workers(self) -> Iterator[None]:
        """The worker loops running in a background event loop."""
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()

        async def main() -> None:
            await asyncio.gather(*(self.worker.run(stop)
                                   for _ in range(self.settings.worker_concurrency)))

        thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
        thread.start()
        try:
            yield
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(120)

    def wait_indexed(self, job_ids: list[str], timeout_s: float) -> float:
        """Seconds until every job is indexed (polled every 50 ms); raises if one fails."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout_s:
            with self.pool.connection() as conn:
                rows = conn.execute("SELECT status, error FROM jobs WHERE job_id = ANY(%s)",
                                    (job_ids,)).fetchall()
            if any(status == "failed" for status, _ in rows):
                raise RuntimeError(f"a job failed: {[e for s, e in rows if s == 'failed']}")
            if sum(status == "indexed" for status, _ in rows) == len(job_ids):
                return time.perf_counter() - started
            time.sleep(0.05)
        raise TimeoutError(f"jobs not indexed within {timeout_s} s")

    def stored_texts(self, document_ids: list[str]) -> list[str]:
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT text FROM chunks WHERE document_id = ANY(%s)",
                                (document_ids,)).fetchall()
        return [text for (text,) in rows]


def abstracts(dataset: Path) -> list[str]:
    with (dataset / "corpus.jsonl").open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [f"{r.get('title', '')}\n\n{r['text']}" for r in rows]


def large_text(texts: list[str], megabytes: float) -> bytes:
    """SciFact abstracts, repeated as needed, cut at a paragraph to `megabytes`."""
    size = int(megabytes * 1024 * 1024)
    corpus = "\n\n".join(texts)
    data = ("\n\n".join([corpus] * (size // len(corpus) + 1))).encode()[:size]
    return data[: data.rfind(b"\n\n")]


def peak_rss_mb() -> float:
    """This process's peak resident set so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fairness(bench: Bench, texts: list[str], megabytes: float, head_start_s: float
             ) -> dict[str, Any]:
    """Time a 62-byte upload to `indexed` while a large file is being indexed."""
    data = large_text(texts, megabytes)
    before = peak_rss_mb()
    cpu = bench.cpu.split()
    with bench.workers():
        started = time.perf_counter()
        big_job, big_doc = bench.submissions.submit("large.txt", "text/plain", data)
        while bench.repo.get(big_job).status != "processing":
            time.sleep(0.05)
        time.sleep(head_start_s)  # well into chunking and embedding
        tiny_job, _ = bench.submissions.submit("tiny.txt", "text/plain", TINY)
        tiny_s = bench.wait_indexed([tiny_job], 600)
        big_still_running = bench.repo.get(big_job).status == "processing"
        bench.wait_indexed([big_job], 7200)
        large_s = time.perf_counter() - started
        large_cpu = [round(b - a, 1) for a, b in zip(cpu, bench.cpu.split(), strict=True)]
        peak = peak_rss_mb()  # before the raw encode below adds its own
    chunks = bench.repo.get(big_job).chunk_count
    raw_s, raw_cpu = raw_encode(bench, bench.stored_texts([big_doc]))
    return {
        "large_mb": round(len(data) / 1024 / 1024, 2), "large_chunks": chunks,
        "large_s": round(large_s, 1), "large_chunks_per_s": round(chunks / large_s, 1),
        "large_raw_encode_s": round(raw_s, 1),
        "large_ratio_to_raw_encode": round(raw_s / large_s, 3),
        "large_cpu_s_worker_moto_postgres": large_cpu, "large_raw_encode_cpu_s": round(raw_cpu, 1),
        "large_cpu_ratio_to_raw_encode": round(raw_cpu / sum(large_cpu), 3),
        "tiny_bytes": len(TINY), "tiny_time_to_indexed_s": round(tiny_s, 2),
        "large_still_indexing_when_tiny_done": big_still_running,
        "rss_before_large_mb": round(before, 0),
        "peak_rss_mb": round(peak, 0),
    }


def raw_encode(bench: Bench, texts: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of SentenceTransformer.encode of `texts`, as the batcher calls it."""
    model = bench.embeddings.sentence_transformer()
    started, cpu = time.perf_counter(), time.process_time()
    model.encode(texts, batch_size=bench.settings.embed_batch_size, convert_to_numpy=True,
                 normalize_embeddings=True, show_progress_bar=False)
    return time.perf_counter() - started, time.process_time() - cpu


def throughput(bench: Bench, texts: list[str], docs: int, per_doc: int) -> dict[str, Any]:
    """Documents/s and chunks/s end to end, against raw model.encode of the same chunks.

    The raw encode runs before and after the end-to-end run and is averaged, so a
    change in load from other processes shifts both sides alike.
    """
    bodies = ["\n\n".join(texts[(i * per_doc + j) % len(texts)] for j in range(per_doc))
              for i in range(docs)]
    before = raw_encode(bench, [c for body in bodies for c in bench.chunker.split(body)])
    jobs, doc_ids = [], []
    for n, body in enumerate(bodies):
        job_id, doc_id = bench.submissions.submit(f"doc{n}.txt", "text/plain", body.encode())
        jobs.append(job_id)
        doc_ids.append(doc_id)
    cpu = bench.cpu.seconds()
    with bench.workers():
        e2e_s = bench.wait_indexed(jobs, 7200)
        e2e_cpu = bench.cpu.seconds() - cpu
    stored = bench.stored_texts(doc_ids)
    after = raw_encode(bench, stored)
    raw_s, raw_cpu = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
    n = len(stored)
    return {
        "documents": docs, "abstracts_per_document": per_doc, "chunks": n,
        "e2e_s": round(e2e_s, 2), "documents_per_s": round(docs / e2e_s, 2),
        "chunks_per_s": round(n / e2e_s, 1),
        "raw_encode_s": [round(before[0], 2), round(after[0], 2)],
        "raw_encode_chunks_per_s": round(n / raw_s, 1),
        "ratio_to_raw_encode": round(raw_s / e2e_s, 3),
        "e2e_cpu_s": round(e2e_cpu, 1), "raw_encode_cpu_s": round(raw_cpu, 1),
        "cpu_ratio_to_raw_encode": round(raw_cpu / e2e_cpu, 3),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(DEFAULT_DATASET))
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--per-doc", type=int, default=10, help="abstracts per document")
    parser.add_argument("--large-mb", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=None, help="worker loops")
    parser.add_argument("--small", action="store_true", help="a quick run (< 60 s)")
    args = parser.parse_args(argv)
    if args.small:
        args.docs, args.per_doc, args.large_mb = 8, 2, 0.08
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "local")  # moto accepts any credentials
    texts = abstracts(Path(args.dataset))
    with tempfile.TemporaryDirectory() as tmp, start_moto() as moto:
        postgres = start_postgres(Path(tmp) / "pg")
        try:
            migrate(postgres.dsn, 384)
            queue_url = ensure_bucket_and_queue(moto.endpoint_url, "bench", "bench")
            extra = {} if args.concurrency is None else {"worker_concurrency": args.concurrency}
            settings = IngestSettings(
                database_url=postgres.dsn, s3_endpoint_url=moto.endpoint_url,
                sqs_endpoint_url=moto.endpoint_url, s3_bucket="bench", sqs_queue_url=queue_url,
                sqs_wait_s=1, max_upload_mb=max(20.0, args.large_mb + 1), **extra)
            settings.apply_switch_interval()
            with open_pool(postgres.dsn, max_size=settings.db_pool_max) as pool, \
                    tenant_scope(DEFAULT_TENANT):  # uploads act for a tenant
                bench = Bench(settings, pool, CpuMeter(moto.process.pid, postgres.data_dir))
                bench.embeddings.dimension  # noqa: B018 - load the model before timing
                fair = fairness(bench, texts, args.large_mb, 0.5 if args.small else 3.0)
                speed = throughput(bench, texts, args.docs, args.per_doc)
                bench.batcher.close()
        finally:
            postgres.stop()
    report = {**speed, **fair, "concurrency": settings.worker_concurrency,
              "batch_size": settings.embed_batch_size, "slice_size": settings.embed_slice_size,
              "switch_interval_ms": sys.getswitchinterval() * 1000}
    print(f"throughput: {speed['documents_per_s']} documents/s, {speed['chunks_per_s']} chunks/s"
          f" end to end vs {speed['raw_encode_chunks_per_s']} chunks/s raw model.encode"
          f" -> {speed['ratio_to_raw_encode']:.1%}; CPU seconds: {speed['e2e_cpu_s']} vs"
          f" {speed['raw_encode_cpu_s']} -> {speed['cpu_ratio_to_raw_encode']:.1%}")
    print(f"fairness: {len(TINY)}-byte file indexed in {fair['tiny_time_to_indexed_s']} s while a"
          f" {fair['large_mb']} MB file ({fair['large_chunks']} chunks) took {fair['large_s']} s"
          f" ({fair['large_ratio_to_raw_encode']:.1%} of raw encode's speed;"
          f" {fair['large_cpu_ratio_to_raw_encode']:.1%} by CPU time)")
    print(f"memory: peak RSS {fair['peak_rss_mb']:.0f} MB"
          f" ({fair['rss_before_large_mb']:.0f} MB peak before the large file)")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
