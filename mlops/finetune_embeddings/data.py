"""Training data: the chunked corpus, chunk-level pairs and retriever-mined hard negatives."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from mlops.evaluate_rag.beir import CorpusDoc
from mlops.evaluate_rag.indexing import document_text
from services.ingest.chunking import TokenChunker, chunk_sections
from services.ingest.parsing import Section

logger = logging.getLogger(__name__)

_SCAN = 200  # ranked chunks scanned for a query's negatives


@dataclass(frozen=True)
class ChunkedCorpus:
    """The corpus cut as the ingest path cuts it: chunk texts and each chunk's document."""

    texts: list[str]
    doc_ids: list[str]


@dataclass(frozen=True)
class Pair:
    """A query, the best-matching chunk of one relevant document, and hard negatives."""

    query: str
    positive: str
    negatives: tuple[str, ...]


def chunk_corpus(
    corpus: Mapping[str, CorpusDoc], chunker: TokenChunker, progress: bool = True
) -> ChunkedCorpus:
    """Every document's chunks, in corpus order (title and text, as evaluate_rag indexes)."""
    texts: list[str] = []
    doc_ids: list[str] = []
    for doc_id, doc in tqdm(corpus.items(), desc="chunking", unit="doc", disable=not progress):
        for record in chunk_sections(chunker, doc_id, [Section(document_text(doc))]):
            texts.append(record.text)
            doc_ids.append(doc_id)
    return ChunkedCorpus(texts, doc_ids)


def top_chunks(scores: np.ndarray, depth: int) -> np.ndarray:
    """Indices of the `depth` highest scores, best first."""
    depth = min(depth, scores.shape[0])
    part = np.argpartition(-scores, depth - 1)[:depth]
    return part[np.argsort(-scores[part], kind="stable")]


def mine_pairs(
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    corpus: ChunkedCorpus,
    query_vectors: np.ndarray,
    chunk_vectors: np.ndarray,
    hard_negatives: int,
    margin: float,
) -> list[Pair]:
    """One pair per (query, relevant document), in query order.

    The positive is the relevant document's chunk the retriever scores highest. Negatives
    are the retriever's top chunks of other documents (one per document), skipping every
    judged-relevant document and any chunk scoring above positive - `margin`: a chunk the
    retriever ranks near or above a known positive is likely an unjudged relevant one.
    Pairs for which too few negatives qualify are dropped.
    """
    doc_ids = np.asarray(corpus.doc_ids)
    pairs: list[Pair] = []
    for row, (qid, text) in enumerate(queries.items()):
        relevant = {d for d, grade in qrels[qid].items() if grade > 0}
        scores = chunk_vectors @ query_vectors[row]
        ranked = top_chunks(scores, _SCAN)
        for doc in sorted(relevant):
            own = np.flatnonzero(doc_ids == doc)
            if own.size == 0:
                continue
            best = int(own[np.argmax(scores[own])])
            negatives = _negatives(ranked, scores, corpus.doc_ids, relevant,
                                   float(scores[best]) - margin, hard_negatives)
            if len(negatives) < hard_negatives:
                continue
            pairs.append(Pair(text, corpus.texts[best],
                              tuple(corpus.texts[i] for i in negatives)))
    logger.info("mined %d pairs from %d queries", len(pairs), len(queries))
    return pairs


def _negatives(
    ranked: np.ndarray, scores: np.ndarray, doc_ids: list[str], relevant: set[str],
    ceiling: float, wanted: int,
) -> list[int]:
    chosen: list[int] = []
    seen: set[str] = set()
    for index in ranked:
        doc = doc_ids[int(index)]
        if len(chosen) == wanted:
            break
        if doc in relevant or doc in seen or scores[index] > ceiling:
            continue
        seen.add(doc)
        chosen.append(int(index))
    return chosen


def capped(pairs: list[Pair], max_pairs: int, seed: int) -> list[Pair]:
    """At most `max_pairs` pairs, a seeded sample when there are more."""
    if len(pairs) <= max_pairs:
        return pairs
    return random.Random(seed).sample(pairs, max_pairs)


def batches(pairs: list[Pair], size: int, rng: random.Random) -> list[list[Pair]]:
    """Shuffled batches in which no text occurs twice, so an in-batch negative is never
    another copy of a positive (a query with two relevant documents, a shared chunk)."""
    pending = list(pairs)
    rng.shuffle(pending)
    out: list[list[Pair]] = []
    while pending:
        batch: list[Pair] = []
        seen: set[str] = set()
        rest: list[Pair] = []
        for pair in pending:
            texts = {pair.query, pair.positive, *pair.negatives}
            if len(batch) < size and not texts & seen:
                batch.append(pair)
                seen |= texts
            else:
                rest.append(pair)
        out.append(batch)
        pending = rest
    return out
