"""The shared embedding batcher: same vectors as the model, fair to small jobs."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from services.common.embeddings import EmbeddingProvider, build_embeddings
from services.ingest.batching import EmbeddingBatcher


@pytest.fixture(scope="module")
def model() -> EmbeddingProvider:
    return build_embeddings()


@pytest.fixture
def batcher(model: EmbeddingProvider) -> Iterator[EmbeddingBatcher]:
    shared = EmbeddingBatcher(model, batch_size=16)
    yield shared
    shared.close()


def _texts(prefix: str, n: int) -> list[str]:
    return [f"{prefix} sentence number {i} about harbours and fish" for i in range(n)]


def test_concurrent_jobs_get_the_vectors_of_their_own_texts(
    model: EmbeddingProvider, batcher: EmbeddingBatcher
) -> None:
    jobs = {f"job{j}": _texts(f"job {j}", 5 + 7 * j) for j in range(4)}
    with ThreadPoolExecutor(4) as pool:
        got = dict(zip(jobs, pool.map(lambda k: batcher.embed(jobs[k], k), jobs), strict=True))
    for key, texts in jobs.items():
        np.testing.assert_allclose(got[key], model.embed_documents(texts), atol=1e-5)


def test_a_small_job_is_served_long_before_a_big_one_finishes(
    batcher: EmbeddingBatcher,
) -> None:
    big = batcher.submit(_texts("big", 400), "big")  # 25 batches of 16
    small = batcher.submit(["a tiny upload"], "small")
    assert small.result(timeout=60).shape == (1, 384)
    assert not big.done()  # the small one rode in an early batch
    assert big.result(timeout=120).shape == (400, 384)


def test_one_jobs_bad_input_fails_only_that_job(batcher: EmbeddingBatcher) -> None:
    ahead = batcher.submit(_texts("ahead", 64), "ahead")  # keeps the thread busy meanwhile
    bad: Any = [None]  # not text: the tokenizer rejects it
    failing = batcher.submit(bad, "bad")
    good = batcher.submit(_texts("good", 3), "good")  # shares a batch with the bad one
    assert good.result(timeout=60).shape == (3, 384)
    with pytest.raises(Exception):  # noqa: B017 - whatever the tokenizer raises
        failing.result(timeout=60)
    assert ahead.result(timeout=60).shape == (64, 384)


def test_a_closed_batcher_refuses_work(batcher: EmbeddingBatcher) -> None:
    assert batcher.embed(["warm"], "k").shape == (1, 384)
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(["late"], "k")
