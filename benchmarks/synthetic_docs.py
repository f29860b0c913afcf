"""Synthetic documents, a throwaway database and a p50 timer shared by the
store-level benchmarks."""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from devstack.embedded import start_postgres
from services.common.db import migrate
from services.common.types import ChunkRecord, DocumentMeta

WORDS = [f"w{n}" for n in range(3000)]
PER_DOC = 50  # chunks per synthetic document


def synthetic_doc(
    rng: random.Random, doc_id: str
) -> tuple[DocumentMeta, list[ChunkRecord], np.ndarray]:
    """PER_DOC chunks of 60 random words, each with a random 384-d unit vector."""
    chunks = [ChunkRecord(f"{doc_id}:{i}", doc_id, i, " ".join(rng.choices(WORDS, k=60)))
              for i in range(PER_DOC)]
    vectors = np.random.default_rng(rng.randrange(1 << 30)).normal(size=(PER_DOC, 384))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return DocumentMeta(doc_id, doc_id, f"{doc_id}.txt", "text/plain"), chunks, vectors


def p50_ms(call: Callable[[], object], runs: int) -> float:
    """Median wall time of `runs` calls, in milliseconds."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 3)


@contextmanager
def migrated_postgres(dimension: int = 384) -> Iterator[str]:
    """The DSN of a fresh PostgreSQL (pgserver) with the schema, gone afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        server = start_postgres(Path(tmp) / "pg")
        try:
            migrate(server.dsn, dimension)
            yield server.dsn
        finally:
            server.stop()
