"""Pair mining for fine-tuning: positives, hard negatives and the false-negative guard."""

from __future__ import annotations

import random

import numpy as np

from mlops.finetune_embeddings.data import ChunkedCorpus, Pair, batches, mine_pairs


def _unit(angle: float) -> list[float]:
    """A 2-d unit vector whose cosine with (1, 0) is cos(angle)."""
    return [float(np.cos(angle)), float(np.sin(angle))]


def test_negatives_skip_relevant_documents_and_near_ties_with_the_positive() -> None:
    # Cosines with the query: positive chunk 0.80 (its document's other chunk 0.60),
    # an unjudged chunk above the positive (0.95), one within the 0.05 margin (0.78),
    # then two clean candidates of one document (0.70, 0.65) and another (0.50).
    cosines = {"rel-a": 0.80, "rel-b": 0.60, "above": 0.95, "tie": 0.78,
               "neg-1": 0.70, "neg-1b": 0.65, "neg-2": 0.50}
    doc_of = {"rel-a": "R", "rel-b": "R", "above": "A", "tie": "T", "neg-1": "N1",
              "neg-1b": "N1", "neg-2": "N2"}
    names = list(cosines)
    corpus = ChunkedCorpus(texts=names, doc_ids=[doc_of[n] for n in names])
    chunk_vectors = np.asarray([_unit(np.arccos(c)) for c in cosines.values()], np.float32)
    query_vectors = np.asarray([[1.0, 0.0]], np.float32)
    pairs = mine_pairs({"q": "the query"}, {"q": {"R": 1}}, corpus, query_vectors,
                       chunk_vectors, hard_negatives=2, margin=0.05)
    assert pairs == [Pair("the query", "rel-a", ("neg-1", "neg-2"))]
    # Asking for more negatives than qualify drops the pair rather than padding it.
    assert mine_pairs({"q": "the query"}, {"q": {"R": 1}}, corpus, query_vectors,
                      chunk_vectors, hard_negatives=3, margin=0.05) == []


def test_a_batch_never_holds_the_same_text_twice() -> None:
    # One query with two relevant documents: its two pairs must land in different batches,
    # or each positive would be the other's in-batch negative.
    pairs = [Pair("q1", "p1", ()), Pair("q1", "p2", ()), Pair("q2", "p3", ()),
             Pair("q3", "p3", ())] + [Pair(f"x{i}", f"y{i}", ()) for i in range(6)]
    out = batches(pairs, 4, random.Random(1))
    key = repr
    assert sorted((p for batch in out for p in batch), key=key) == sorted(pairs, key=key)
    assert all(len(batch) <= 4 for batch in out)
    for batch in out:
        texts = [t for p in batch for t in (p.query, p.positive)]
        assert len(texts) == len(set(texts))
