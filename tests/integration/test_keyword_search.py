"""Keyword (BM25) search, run against every VectorStore backend."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from services.common.types import ChunkRecord, DocumentMeta, SearchFilter
from services.common.vectorstore.base import VectorStore
from services.common.vectorstore.factory import build_vector_store
from tests.integration.conftest import SMALL_DIM

ZOO = DocumentMeta("zoo", "Zoo", "zoo.md", "text/markdown", ("animals",),
                   datetime(2024, 1, 1, tzinfo=UTC))
SEA = DocumentMeta("sea", "Sea", "sea.pdf", "application/pdf", ("animals", "ocean"),
                   datetime(2024, 6, 1, tzinfo=UTC))
MARKET = DocumentMeta("market", "Market", "market.txt", "text/plain", ("finance",),
                      datetime(2025, 1, 1, tzinfo=UTC))

TEXTS = {
    ZOO: ["Penguins live in Antarctica and eat krill.",
          "The penguin colony grows every winter; penguins huddle together for warmth."],
    SEA: ["Krill are small crustaceans eaten by whales.",
          "Blue whales migrate across the oceans of the world."],
    MARKET: ["Stock markets fell sharply on Monday.",
             "Antarctica expedition shares rose after the announcement."],
}


def put(store: VectorStore, doc: DocumentMeta, texts: list[str]) -> None:
    chunks = [ChunkRecord(f"{doc.document_id}:{i}", doc.document_id, i, t)
              for i, t in enumerate(texts)]
    vectors = np.ones((len(chunks), SMALL_DIM), dtype=np.float32)
    store.replace_document(doc, chunks, vectors)


@pytest.fixture
def filled(store: VectorStore) -> VectorStore:
    for doc, texts in TEXTS.items():
        put(store, doc, texts)
    return store


def ids(store: VectorStore, query: str, flt: SearchFilter | None = None,
        top_k: int = 10) -> list[str]:
    return [r.chunk_id for r in store.keyword_search(query, top_k, flt)]


def test_only_chunks_sharing_a_term_come_back_best_first(filled: VectorStore) -> None:
    results = filled.keyword_search("penguins", 10)
    # "penguin" twice in zoo:1, once in zoo:0 (stemming matches penguin/penguins).
    assert [r.chunk_id for r in results] == ["zoo:1", "zoo:0"]
    assert all(r.score_kind == "keyword" and r.score > 0 for r in results)
    assert results[0].score > results[1].score
    top = results[0]
    assert (top.document_id, top.title, top.source, top.ordinal) == ("zoo", "Zoo", "zoo.md", 1)
    assert top.text == TEXTS[ZOO][1]


def test_a_rare_term_outweighs_a_common_one(filled: VectorStore) -> None:
    # "antarctica" is in two chunks, "krill" in two, "colony" in one: the chunk with the
    # rare term wins over chunks holding only a more common one.
    assert ids(filled, "colony antarctica")[0] == "zoo:1"
    # A chunk with both query terms beats chunks with one.
    assert ids(filled, "krill antarctica")[0] == "zoo:0"


def test_queries_without_a_shared_term_return_nothing(filled: VectorStore) -> None:
    assert ids(filled, "quantum chromodynamics") == []
    assert ids(filled, "the of and is") == []  # stopwords only
    assert ids(filled, "   ") == []


def test_query_syntax_characters_are_plain_text(filled: VectorStore) -> None:
    for query in ('what\'s "krill" AND (whales)?', "krill:* | !whales", "O'Brien\\ <-> krill"):
        assert set(ids(filled, query)) >= {"sea:0"}


def test_top_k_limits_results(filled: VectorStore) -> None:
    assert len(ids(filled, "krill whales antarctica penguins", top_k=2)) == 2


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (SearchFilter(sources=("sea.pdf",)), {"sea:0"}),
        (SearchFilter(tags=("animals",)), {"zoo:0", "sea:0"}),
        (SearchFilter(tags=("animals", "ocean")), {"sea:0"}),
        (SearchFilter(created_after=datetime(2024, 3, 1, tzinfo=UTC)), {"sea:0", "market:1"}),
        (SearchFilter(document_ids=("market",)), {"market:1"}),
    ],
)
def test_filters_keep_only_matching_documents(
    filled: VectorStore, flt: SearchFilter, expected: set[str]
) -> None:
    assert set(ids(filled, "krill antarctica", flt)) == expected


@pytest.mark.parametrize(
    "flt",
    [SearchFilter(sources=("nope.md",)), SearchFilter(tags=("finance", "animals")),
     SearchFilter(created_after=datetime(2030, 1, 1, tzinfo=UTC))],
)
def test_a_filter_matching_nothing_returns_nothing(
    filled: VectorStore, flt: SearchFilter
) -> None:
    assert ids(filled, "krill antarctica", flt) == []


def test_reindexing_replaces_keyword_hits_and_delete_removes_them(filled: VectorStore) -> None:
    put(filled, ZOO, TEXTS[ZOO])  # idempotent re-run
    assert ids(filled, "penguins") == ["zoo:1", "zoo:0"]
    put(filled, ZOO, ["Emperor penguins breed in winter."])
    assert ids(filled, "penguins") == ["zoo:0"]
    assert ids(filled, "huddle") == []
    assert filled.delete_document("zoo") == 1
    assert ids(filled, "penguins") == []
    assert ids(filled, "krill") == ["sea:0"]


def test_chroma_builds_its_keyword_index_for_an_older_collection(tmp_path: Path) -> None:
    path = tmp_path / "chroma"
    old = build_vector_store("chroma", chroma_path=str(path))
    for doc, texts in TEXTS.items():
        put(old, doc, texts)
    del old
    for leftover in path.glob("keyword.sqlite3*"):  # as if written before keyword search
        leftover.unlink()
    reopened = build_vector_store("chroma", chroma_path=str(path))
    assert ids(reopened, "penguins") == ["zoo:1", "zoo:0"]
    assert ids(reopened, "krill", SearchFilter(sources=("sea.pdf",))) == ["sea:0"]
