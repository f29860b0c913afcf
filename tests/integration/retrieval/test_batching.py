"""Concurrent query embeddings share forward passes and get their own vectors."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from services.common.embeddings import EmbeddingProvider, SentenceTransformerEmbeddings
from services.retrieval.batching import BatchingEmbeddings

QUERIES = [f"question {i} about {topic}" for i, topic in
           enumerate(["penguins", "relays", "bread", "cats"] * 3)]


class CountingEmbeddings(SentenceTransformerEmbeddings):
    """The real model, counting its forward passes."""

    def __init__(self, model: EmbeddingProvider) -> None:
        super().__init__()
        self._model = model.sentence_transformer()  # type: ignore[attr-defined]
        self.passes = 0

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.passes += 1
        return super().embed_documents(texts)


def test_concurrent_queries_share_passes_and_keep_their_own_vectors(
    embeddings: EmbeddingProvider,
) -> None:
    counting = CountingEmbeddings(embeddings)
    batching = BatchingEmbeddings(counting, max_batch=8)
    results: dict[int, np.ndarray] = {}
    start = threading.Barrier(len(QUERIES))

    def ask(i: int) -> None:
        start.wait()
        results[i] = batching.embed_query(QUERIES[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(QUERIES))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == len(QUERIES)
    expected = embeddings.embed_documents(QUERIES)
    for i, vector in results.items():
        assert np.allclose(vector, expected[i], atol=1e-5)
    assert counting.passes < len(QUERIES)


def test_a_failed_pass_reaches_every_caller_of_its_batch(
    embeddings: EmbeddingProvider,
) -> None:
    with pytest.raises(ValueError):
        BatchingEmbeddings(embeddings, max_batch=0)
    batching = BatchingEmbeddings(embeddings)
    with pytest.raises(ValueError, match="Unsupported input type"):
        batching.embed_query(None)  # type: ignore[arg-type]
    # The model thread survives a failed pass: the next query is served.
    assert batching.embed_query("penguins").shape == (embeddings.dimension,)



def test_the_batcher_reports_the_wrapped_models_identity(tmp_path: Path) -> None:
    """Caches and indexes key on model_id: a model folder must keep its own through it."""
    folder = tmp_path / "tuned-embedder"
    folder.mkdir()
    (folder / "config.json").write_text('{"weights": 1}')
    inner = SentenceTransformerEmbeddings(str(folder))
    batching = BatchingEmbeddings(inner)
    assert batching.model_id == inner.model_id != inner.model_name
    assert batching.model_name == inner.model_name == "tuned-embedder"
