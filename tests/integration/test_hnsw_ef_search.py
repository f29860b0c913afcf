"""RAGCHAT_HNSW_EF_SEARCH reaches the HNSW scan: a wider candidate list finds more of
the true nearest neighbours."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
from psycopg_pool import ConnectionPool

from services.common.components import vector_store_from
from services.common.db import migrate, open_pool
from services.common.types import ChunkRecord, DocumentMeta
from services.common.vectorstore.base import VectorStore
from services.common.vectorstore.pgvector import PgVectorStore
from services.retrieval.config import RetrievalSettings

POINTS, QUERIES, K, DIM = 2000, 40, 10, 32  # random 32-d: hard enough for HNSW


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.standard_normal((POINTS + QUERIES, DIM)).astype(np.float32)


@pytest.fixture
def indexed(
    make_database: Callable[[str], str], vectors: np.ndarray
) -> Iterator[ConnectionPool]:
    dsn = make_database("hnsw_ef_search")
    migrate(dsn, DIM)
    pool = open_pool(dsn, max_size=2)
    store = PgVectorStore(pool)
    for start in range(0, POINTS, 1000):
        doc = DocumentMeta(f"d{start}", "t", "s", "text/plain")
        chunks = [ChunkRecord(f"c{i}", doc.document_id, i, "x")
                  for i in range(start, start + 1000)]
        store.replace_document(doc, chunks, vectors[start:start + 1000])
    yield pool
    pool.close()


def recall(store: VectorStore, vectors: np.ndarray) -> float:
    base = vectors[:POINTS] / np.linalg.norm(vectors[:POINTS], axis=1, keepdims=True)
    found = 0
    for query in vectors[POINTS:]:
        truth = {f"c{i}" for i in np.argsort(-(base @ query))[:K]}
        found += len(truth & {c.chunk_id for c in store.search(query, K, min_score=-1)})
    return found / (QUERIES * K)


def store_with(ef: int, pool: ConnectionPool, monkeypatch: pytest.MonkeyPatch) -> VectorStore:
    monkeypatch.setenv("RAGCHAT_HNSW_EF_SEARCH", str(ef))
    return vector_store_from(RetrievalSettings(), pool)


def test_a_wider_ef_search_finds_more_true_neighbours(
    indexed: ConnectionPool, vectors: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    narrow = recall(store_with(1, indexed, monkeypatch), vectors)  # raised to k = 10
    wide = recall(store_with(400, indexed, monkeypatch), vectors)
    assert wide >= 0.99
    assert narrow < wide - 0.05


def test_ef_search_is_bounded() -> None:
    with pytest.raises(ValueError):
        RetrievalSettings(hnsw_ef_search=0)
    with pytest.raises(ValueError):
        RetrievalSettings(hnsw_ef_search=1001)
