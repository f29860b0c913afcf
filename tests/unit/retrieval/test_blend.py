"""The keyword half of the blend reranker: rare query terms found in a passage count most."""

from __future__ import annotations

from services.retrieval.rerank import keyword_overlap


def test_the_passage_with_the_rare_query_term_scores_highest() -> None:
    texts = [
        "The Normans settled in Normandy.",
        "The Normans fought at Dyrrachium in 1081.",
        "The Normans built castles in England.",
    ]
    scores = keyword_overlap("When did the Normans take Dyrrachium?", texts)
    assert scores.argmax() == 1
    assert scores[0] == scores[2] and 0 < scores[0] < scores[1] <= 1.0


def test_plurals_match_and_stopwords_do_not_count() -> None:
    scores = keyword_overlap("the castles of the Normans", ["A castle.", "Of the the of."])
    assert scores[0] > 0 and scores[1] == 0
    assert keyword_overlap("the of", ["the of"]).tolist() == [0.0]
