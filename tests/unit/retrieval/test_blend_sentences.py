"""The blend reranker scores a passage by its best sentence: what a reader looking for
the answer to one question finds, whatever else the passage says."""

from __future__ import annotations

import numpy as np
import pytest

from services.common.embeddings import EmbeddingProvider, build_embeddings
from services.common.sentences import split_sentences, stem
from services.common.types import ScoredChunk
from services.retrieval.rerank import BlendReranker

QUESTION = "When did the Normans capture Dyrrachium?"
FOCUSED = ("Byzantium sent envoys west. The Normans captured Dyrrachium in 1082. "
           "Rain fell for a week.")
# Every key term of the question, but never together: a keyword count alone ties them.
DIFFUSE = ("The Normans raided the coast. Merchants avoided Dyrrachium that year. "
           "Nobody could capture the harbour tower.")


@pytest.fixture(scope="module")
def embeddings() -> EmbeddingProvider:
    return build_embeddings()


def _chunk(i: int, text: str) -> ScoredChunk:
    return ScoredChunk(chunk_id=f"d{i}:0", document_id=f"d{i}", title="", source="",
                       text=text, ordinal=0, score=1.0 - i / 10, score_kind="hybrid")


def test_the_passage_whose_one_sentence_answers_beats_diffuse_overlap(
    embeddings: EmbeddingProvider,
) -> None:
    reranked = BlendReranker(embeddings).rerank(QUESTION, [_chunk(0, DIFFUSE),
                                                           _chunk(1, FOCUSED)])
    assert [c.document_id for c in reranked] == ["d1", "d0"]
    assert reranked[0].score_kind == "rerank:blend"


def test_passage_level_scoring_cannot_tell_them_apart_by_keywords(
    embeddings: EmbeddingProvider,
) -> None:
    # Both passages hold every key term: at passage level only the cosine differs, and
    # at sentence level the focused one wins by a clear margin.
    whole = BlendReranker(embeddings, sentences=False).scores(QUESTION, [DIFFUSE, FOCUSED])
    best = BlendReranker(embeddings).scores(QUESTION, [DIFFUSE, FOCUSED])
    assert best[1] - best[0] > 0.5
    assert best[1] - best[0] > whole[1] - whole[0]


def test_empty_and_blank_passages_score_zero_and_rank_last(
    embeddings: EmbeddingProvider,
) -> None:
    scores = BlendReranker(embeddings).scores(QUESTION, ["", FOCUSED, "  \n\n  "])
    assert scores[0] == 0.0 and scores[2] == 0.0 and scores[1] > 1.0
    assert BlendReranker(embeddings).scores(QUESTION, ["", ""]).tolist() == [0.0, 0.0]
    assert BlendReranker(embeddings).rerank(QUESTION, []) == []


def test_one_sentence_passages_score_as_their_sentence(embeddings: EmbeddingProvider) -> None:
    texts = ["The Normans captured Dyrrachium in 1082.", "Rain fell for a week."]
    scores = BlendReranker(embeddings, passage_weight=0.0).scores(QUESTION, texts)
    cosine = embeddings.embed_documents(texts) @ embeddings.embed_query(QUESTION)
    # Cosine plus the keyword share: "normans" is in one text only, "captured" and
    # "dyrrachium" too, so the first holds every key term and the second none.
    np.testing.assert_allclose(scores, cosine + np.array([1.0, 0.0]), atol=1e-6)


def test_a_heading_is_its_own_sentence_and_a_stop_before_a_capital_ends_one() -> None:
    assert split_sentences("Normans\n\nThe Normans were people. They came in 911!") == [
        "Normans", "The Normans were people.", "They came in 911!"]
    assert split_sentences('He said "Go." Then 1066 came. the end') == [
        'He said "Go."', "Then 1066 came. the end"]
    assert split_sentences(" \n ") == []


def test_stems_agree_across_inflections() -> None:
    assert len({stem(w) for w in ("export", "exports", "exporting", "exported")}) == 1
    assert stem("castles") == stem("castle") and stem("studies") == stem("study")
    assert stem("class") == stem("classes") == "class"
    assert stem("was") == "was" and stem("its") == "its"
