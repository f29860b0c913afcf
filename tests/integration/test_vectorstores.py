"""One behavioural suite run against every VectorStore backend (pgvector and Chroma)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from services.common.db import migrate
from services.common.types import ChunkRecord, DocumentMeta, SearchFilter
from services.common.vectorstore.base import VectorStore
from services.common.vectorstore.factory import build_vector_store
from tests.integration.conftest import SMALL_DIM

DIM = SMALL_DIM
E0, E1, E2 = np.eye(DIM, dtype=np.float32)[:3]

DOC_A = DocumentMeta("A", "Alpha", "a.md", "text/markdown", ("red", "blue"),
                     datetime(2024, 1, 1, tzinfo=UTC))
DOC_B = DocumentMeta("B", "Beta", "b.pdf", "application/pdf", ("red",),
                     datetime(2024, 6, 1, tzinfo=UTC))
DOC_C = DocumentMeta("C", "Gamma", "c.txt", "text/plain", (), datetime(2025, 1, 1, tzinfo=UTC))

# Cosine similarity to the query E0, by construction.
VECTORS = {
    "A0": (DOC_A, E0),               # 1.0
    "A1": (DOC_A, E0 + E1),          # 0.707
    "B0": (DOC_B, E0 + 2 * E1),      # 0.447
    "B1": (DOC_B, E1),               # 0.0
    "C0": (DOC_C, -E0),              # -1.0
    "C1": (DOC_C, E0 + 0.5 * E1),    # 0.894
}
BEST_FIRST = ["A0", "C1", "A1", "B0", "B1", "C0"]


def chunks_of(doc: DocumentMeta, names: list[str]) -> list[ChunkRecord]:
    return [ChunkRecord(n, doc.document_id, i, f"text of {n}") for i, n in enumerate(names)]


def put(store: VectorStore, doc: DocumentMeta) -> None:
    names = [n for n, (d, _) in VECTORS.items() if d is doc]
    store.replace_document(doc, chunks_of(doc, names), np.stack([VECTORS[n][1] for n in names]))


@pytest.fixture
def filled(store: VectorStore) -> VectorStore:
    for doc in (DOC_A, DOC_B, DOC_C):
        put(store, doc)
    return store


def ids(store: VectorStore, flt: SearchFilter | None = None, top_k: int = 10,
        min_score: float = -1.0) -> list[str]:
    return [r.chunk_id for r in store.search(E0, top_k, min_score, flt)]


def test_results_come_best_first_with_cosine_scores(filled: VectorStore) -> None:
    results = filled.search(E0, 10, -1.0)
    assert [r.chunk_id for r in results] == BEST_FIRST
    assert [round(r.score, 3) for r in results] == [1.0, 0.894, 0.707, 0.447, 0.0, -1.0]
    top = results[0]
    assert (top.document_id, top.title, top.source, top.text, top.ordinal, top.score_kind) == (
        "A", "Alpha", "a.md", "text of A0", 0, "dense")


def test_page_and_heading_come_back_from_every_search(store: VectorStore) -> None:
    chunks = [ChunkRecord("P0", "A", 0, "leave policy on page three", page=3),
              ChunkRecord("P1", "A", 1, "leave days table", heading="Benefits > Leave"),
              ChunkRecord("P2", "A", 2, "leave without a place")]
    store.replace_document(DOC_A, chunks, np.stack([E0, E0 + E1, E1]))
    expected = {"P0": (3, ""), "P1": (None, "Benefits > Leave"), "P2": (None, "")}
    dense = {r.chunk_id: (r.page, r.heading) for r in store.search(E0, 3, -1.0)}
    keyword = {r.chunk_id: (r.page, r.heading) for r in store.keyword_search("leave", 3)}
    filtered = store.search(E0, 3, -1.0, SearchFilter(document_ids=("A",)))
    assert dense == keyword == expected
    assert {r.chunk_id: (r.page, r.heading) for r in filtered} == expected


def test_min_score_and_top_k_limit_results(filled: VectorStore) -> None:
    assert ids(filled, min_score=0.5) == ["A0", "C1", "A1"]
    assert ids(filled, top_k=2) == ["A0", "C1"]
    assert ids(filled, min_score=0.99) == ["A0"]


def test_replacing_a_document_twice_leaves_no_duplicates(filled: VectorStore) -> None:
    put(filled, DOC_A)
    assert filled.count_chunks("A") == 2
    assert ids(filled) == BEST_FIRST

    new = [ChunkRecord("A-new", "A", 0, "rewritten")]
    filled.replace_document(DOC_A, new, np.stack([E0 + E2]))
    filled.replace_document(DOC_A, new, np.stack([E0 + E2]))
    assert filled.count_chunks("A") == 1
    assert filled.count_chunks() == 5
    found = ids(filled)
    assert "A-new" in found and "A0" not in found and "A1" not in found


def test_delete_document_removes_its_chunks(filled: VectorStore) -> None:
    assert filled.delete_document("B") == 2
    assert filled.count_chunks("B") == 0
    assert filled.count_chunks() == 4
    assert not [c for c in ids(filled) if c.startswith("B")]
    assert filled.delete_document("B") == 0
    assert filled.delete_document("never-existed") == 0


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (SearchFilter(sources=("b.pdf",)), ["B0", "B1"]),
        (SearchFilter(sources=("b.pdf", "c.txt")), ["C1", "B0", "B1", "C0"]),
        (SearchFilter(tags=("red",)), ["A0", "A1", "B0", "B1"]),
        (SearchFilter(tags=("red", "blue")), ["A0", "A1"]),
        (SearchFilter(created_after=datetime(2024, 6, 1, tzinfo=UTC)), ["C1", "B0", "B1", "C0"]),
        (SearchFilter(created_before=datetime(2024, 6, 1, tzinfo=UTC)), ["A0", "A1"]),
        (SearchFilter(created_after=datetime(2024, 2, 1), created_before=datetime(2024, 12, 1)),
         ["B0", "B1"]),
        (SearchFilter(document_ids=("C", "A")), ["A0", "C1", "A1", "C0"]),
        (SearchFilter(sources=("a.md", "b.pdf"), tags=("red",), document_ids=("B",)),
         ["B0", "B1"]),
    ],
)
def test_filters_keep_only_matching_documents(
    filled: VectorStore, flt: SearchFilter, expected: list[str]
) -> None:
    assert ids(filled, flt) == expected


@pytest.mark.parametrize(
    "flt",
    [
        SearchFilter(sources=("nope.md",)),
        SearchFilter(tags=("red", "green")),
        SearchFilter(document_ids=("Z",)),
        SearchFilter(created_after=datetime(2030, 1, 1, tzinfo=UTC)),
        SearchFilter(sources=("c.txt",), tags=("red",)),
    ],
)
def test_a_filter_matching_nothing_returns_nothing(filled: VectorStore, flt: SearchFilter) -> None:
    assert ids(filled, flt) == []


def test_filtered_search_finds_the_true_top_k_behind_many_better_chunks(
    store: VectorStore, analyze: Callable[[], None]
) -> None:
    # 400 chunks closer to the query than any chunk of the target document.
    rng = np.random.default_rng(7)
    noise = E0 + 0.1 * rng.standard_normal((400, DIM)).astype(np.float32)
    crowd = DocumentMeta("crowd", "Crowd", "crowd.md", "text/markdown")
    store.replace_document(crowd, chunks_of(crowd, [f"n{i}" for i in range(400)]), noise)
    target = DocumentMeta("T", "Target", "t.md", "text/markdown", ("rare",))
    store.replace_document(target, chunks_of(target, ["t0", "t1", "t2"]),
                           np.stack([E1 + 0.3 * E0, E1 + 0.2 * E0, E1]))
    # With statistics the planner picks the HNSW index, whose post-filtering alone
    # would find none of the target's chunks among the 100 nearest candidates.
    analyze()
    for flt in (SearchFilter(document_ids=("T",)), SearchFilter(tags=("rare",))):
        assert ids(store, flt, top_k=2) == ["t0", "t1"]
    assert len(ids(store, top_k=50)) == 50


def test_mismatched_vectors_are_rejected(filled: VectorStore) -> None:
    chunks = chunks_of(DOC_A, ["x0", "x1"])
    with pytest.raises(ValueError):
        filled.replace_document(DOC_A, chunks, np.stack([E0]))
    with pytest.raises(ValueError):
        filled.replace_document(DOC_A, chunks, np.ones((2, DIM + 1), dtype=np.float32))
    with pytest.raises(ValueError):
        filled.search(np.ones(DIM + 1, dtype=np.float32), 3)
    assert filled.count_chunks("A") == 2  # nothing changed


def test_duplicate_chunk_ids_or_ordinals_change_nothing(filled: VectorStore) -> None:
    twice = [ChunkRecord("x0", "A", 0, "one"), ChunkRecord("x0", "A", 1, "two")]
    with pytest.raises(ValueError, match="chunk ids must be unique"):
        filled.replace_document(DOC_A, twice, np.stack([E0, E1]))
    same_place = [ChunkRecord("x0", "A", 0, "one"), ChunkRecord("x1", "A", 0, "two")]
    with pytest.raises(ValueError, match="ordinals must be unique"):
        filled.replace_document(DOC_A, same_place, np.stack([E0, E1]))
    # Across streamed slices too: the second slice repeats the first one's id.
    slices = [(twice[:1], np.stack([E0])), (twice[1:], np.stack([E1]))]
    with pytest.raises(ValueError, match="chunk ids must be unique"):
        filled.replace_document(DOC_A, slices)
    assert filled.count_chunks("A") == 2 and ids(filled) == BEST_FIRST


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown vector backend"):
        build_vector_store("faiss")


# --- PostgreSQL-only behaviour -------------------------------------------------------


def test_reindexing_keeps_the_columns_ingest_owns(pg_pool: ConnectionPool) -> None:
    store = build_vector_store("pgvector", pool=pg_pool)
    with pg_pool.connection() as conn:
        conn.execute("TRUNCATE documents CASCADE")
        conn.execute(
            "INSERT INTO documents (document_id, title, source, content_type, size_bytes,"
            " sha256, object_key, created_at) VALUES ('A', 'old', 'a.md', 'text/plain', 123,"
            " 'abc', 'raw/A', '2020-01-01T00:00:00Z')"
        )
    put(store, DOC_A)
    with pg_pool.connection() as conn:
        row = conn.execute(
            "SELECT title, tags, size_bytes, sha256, object_key, created_at FROM documents"
        ).fetchone()
    assert row == ("Alpha", ["red", "blue"], 123, "abc", "raw/A",
                   datetime(2020, 1, 1, tzinfo=UTC))


def test_migrate_is_idempotent_and_refuses_another_dimension(
    make_database: Callable[[str], str],
) -> None:
    dsn = make_database("migrate_tests")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(dsn, DIM)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]  # concurrent start-ups
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    migrate(dsn, DIM)
    with pytest.raises(RuntimeError, match=r"\b8-d\b.*\b16-d\b"):
        migrate(dsn, 16)
    with psycopg.connect(dsn) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == {"documents", "jobs", "chunks", "sessions", "turns", "document_versions",
                      "idempotency_keys", "request_log", "bm25_postings", "bm25_corpus",
                      "index_generations"}
