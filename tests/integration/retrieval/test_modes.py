"""Retriever modes, fusion, thresholds and filters on real stores with the real model."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from services.common.embeddings import EmbeddingProvider
from services.common.errors import InvalidArgument
from services.common.types import ScoredChunk, SearchFilter
from services.common.vectorstore.base import VectorStore
from services.retrieval.fusion import weighted_rrf
from services.retrieval.rerank import EmbeddingReranker
from services.retrieval.search import Retriever, SearchPolicy

PARAPHRASE = "Which French monument is built from metal?"  # no word shared with "paris"
CODE = "ZX-4491"  # only keyword search can pin a code like this


def docs(results: list) -> list[str]:
    return [c.document_id for c in results]


@pytest.fixture
def retriever(embeddings: EmbeddingProvider, corpus_store: VectorStore) -> Retriever:
    return Retriever(embeddings, corpus_store, SearchPolicy(default_mode="hybrid"))


def test_each_mode_labels_its_scores(retriever: Retriever) -> None:
    dense = retriever.search(PARAPHRASE, top_k=4, mode="dense")
    assert dense.mode == "dense" and docs(dense.chunks)[0] == "paris"
    assert all(c.score_kind == "dense" and -1 <= c.score <= 1 for c in dense.chunks)

    keyword = retriever.search(CODE, top_k=4, mode="keyword")
    assert docs(keyword.chunks) == ["relay"]
    assert keyword.chunks[0].score_kind == "keyword" and keyword.chunks[0].score > 0
    assert retriever.search(PARAPHRASE, top_k=4, mode="keyword").chunks == []

    hybrid = retriever.search(f"{CODE} {PARAPHRASE}", top_k=4)  # the default mode
    assert hybrid.mode == "hybrid"
    assert {"relay", "paris"} <= set(docs(hybrid.chunks))
    assert all(c.score_kind == "hybrid" and 0 < c.score <= 1 for c in hybrid.chunks)


def test_hybrid_order_is_the_weighted_fusion_of_both_sides(
    embeddings: EmbeddingProvider, corpus_store: VectorStore
) -> None:
    query = "replace the overheating fan relay in the kitchen"
    for weights in ((1.0, 1.0), (3.0, 0.5), (0.5, 3.0)):
        policy = SearchPolicy(dense_min_score=-1.0, dense_weight=weights[0],
                              keyword_weight=weights[1], rrf_k=5)
        retriever = Retriever(embeddings, corpus_store, policy)
        dense = retriever.search(query, top_k=10, mode="dense").chunks
        keyword = retriever.search(query, top_k=10, mode="keyword").chunks
        expected = weighted_rrf([(dense, weights[0]), (keyword, weights[1])], rrf_k=5)
        hybrid = retriever.search(query, top_k=10, mode="hybrid").chunks
        assert [c.chunk_id for c in hybrid] == [c.chunk_id for c in expected]
        assert [c.score for c in hybrid] == pytest.approx([c.score for c in expected])
        # Candidates are fused from ids alone; the survivors carry their full rows.
        assert [_row(c) for c in hybrid] == [_row(c) for c in expected]


def _row(chunk: ScoredChunk) -> tuple:
    return (chunk.chunk_id, chunk.document_id, chunk.title, chunk.source, chunk.text,
            chunk.ordinal, chunk.page, chunk.heading)


def test_an_off_topic_question_finds_nothing_by_default(retriever: Retriever) -> None:
    for mode in ("dense", "keyword", "hybrid"):
        assert retriever.search("How do I renew my passport?", mode=mode).chunks == []


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_min_score_applies_to_the_reported_score(retriever: Retriever, mode: str) -> None:
    query = f"{CODE} fan relay bread"
    everything = retriever.search(query, top_k=10, min_score=-1.0, mode=mode).chunks
    assert len(everything) >= 2
    cut = (everything[0].score + everything[1].score) / 2
    above = retriever.search(query, top_k=10, min_score=cut, mode=mode).chunks
    assert [c.chunk_id for c in above] == [everything[0].chunk_id]
    assert retriever.search(query, min_score=everything[0].score + 1, mode=mode).chunks == []


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_filters_are_exact_in_every_mode(retriever: Retriever, mode: str) -> None:
    query = f"{CODE} relay bread tower"
    only_md = SearchFilter(sources=("recipes.md", "landmarks.md"))
    found = retriever.search(query, top_k=10, min_score=-1.0, flt=only_md, mode=mode).chunks
    assert found and set(docs(found)) <= {"bread", "paris"}
    nothing = SearchFilter(sources=("recipes.md",), tags=("df",))
    assert retriever.search(query, min_score=-1.0, flt=nothing, mode=mode).chunks == []


def test_embedding_reranker_reorders_by_cosine(
    embeddings: EmbeddingProvider, corpus_store: VectorStore
) -> None:
    policy = SearchPolicy(dense_min_score=-1.0, rerank_min_score=-math.inf)
    plain = Retriever(embeddings, corpus_store, policy)
    reranking = Retriever(embeddings, corpus_store, policy, EmbeddingReranker(embeddings))
    query = "relay fan tower bread"
    dense = plain.search(query, top_k=10, mode="dense").chunks
    reranked = reranking.search(query, top_k=10, mode="keyword", rerank=True)
    assert reranked.reranker == "embedding"
    assert all(c.score_kind == "rerank:embedding" for c in reranked.chunks)
    # Keyword candidates, ordered as dense search orders them, with the same cosines.
    keyword_ids = {c.chunk_id for c in plain.search(query, top_k=10, mode="keyword").chunks}
    expected = [c for c in dense if c.chunk_id in keyword_ids]
    assert [c.chunk_id for c in reranked.chunks] == [c.chunk_id for c in expected]
    assert [c.score for c in reranked.chunks] == pytest.approx([c.score for c in expected],
                                                               abs=1e-5)
    not_reranked = reranking.search(query, top_k=10, mode="keyword", rerank=False)
    assert not_reranked.reranker == "" and not_reranked.chunks[0].score_kind == "keyword"
    # Unset: the policy's default, off unless rerank_by_default is set.
    unset = reranking.search(query, top_k=10, mode="keyword")
    assert unset.reranker == "" and unset.chunks[0].score_kind == "keyword"
    eager = Retriever(embeddings, corpus_store,
                      replace(policy, rerank_by_default=True), EmbeddingReranker(embeddings))
    assert eager.search(query, top_k=10, mode="keyword").reranker == "embedding"
    # Hybrid candidates are fused from ids alone: the reranker still scores their text.
    cosine = {c.chunk_id: c.score for c in plain.search(query, top_k=100, mode="dense").chunks}
    hybrid = reranking.search(query, top_k=10, mode="hybrid", rerank=True).chunks
    assert len(hybrid) >= 3 and all(c.text for c in hybrid)
    assert [c.score for c in hybrid] == pytest.approx([cosine[c.chunk_id] for c in hybrid],
                                                      abs=1e-5)


def test_bad_requests_are_invalid_argument(retriever: Retriever) -> None:
    for kwargs in ({"query": " "}, {"query": "x", "mode": "fuzzy"},
                   {"query": "x", "top_k": 101}, {"query": "x", "min_score": math.nan},
                   {"query": "x", "rerank": True}):
        with pytest.raises(InvalidArgument):
            retriever.search(**kwargs)


def test_default_mode_comes_from_the_policy(
    embeddings: EmbeddingProvider, corpus_store: VectorStore
) -> None:
    keyword_first = Retriever(embeddings, corpus_store, SearchPolicy(default_mode="keyword"))
    assert keyword_first.search(CODE).mode == "keyword"
    with pytest.raises(ValueError):
        Retriever(embeddings, corpus_store, SearchPolicy(default_mode="fuzzy"))
