"""Retrieval-only checks (no LLM): precision@1 per ranking, follow-up hit-rate, and the
top dense score as a refusal signal."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from mlops.evaluate_rag.answers_eval import GoldAnswer
from services.common.types import HistoryTurn, ScoredChunk
from services.generation.rewrite import heuristic_rewrite
from services.retrieval.search import Retriever

Search = Callable[[str], Sequence[ScoredChunk]]
_REFERRING = re.compile(r"\b(he|him|his|she|her|it|its|they|them|their|this|these|those)\b",
                        re.IGNORECASE)
# "the Normans", "Rollo", "Duke of Normandy": a run of capitalised words.
_NAME = re.compile(r"(\bthe\s+)?\b([A-Z][\w'-]*(?:\s+(?:of\s+)?[A-Z][\w'-]*)*)")


@dataclass(frozen=True)
class FollowUp:
    """A question that refers back to the one before it (same gold passage)."""

    previous: GoldAnswer
    question: GoldAnswer  # with the pronoun
    original: str  # the question as the dataset has it


def precision_at_1(search: Search, items: Sequence[GoldAnswer]) -> float:
    """Share of questions whose first result is from the gold passage."""
    hits = 0
    for item in items:
        chunks = search(item.question)
        hits += int(bool(chunks) and chunks[0].document_id == item.gold_passage)
    return hits / len(items) if items else 0.0


def precision_by_half(search: Search, gold: Sequence[GoldAnswer]) -> dict[str, float]:
    """Precision@1 on the answerable questions and on all, plus the answerable ones at
    even and at odd positions in the dataset (weights are tuned on the even half, so the
    odd half is the held-out figure)."""
    answerable = [(i, g) for i, g in enumerate(gold) if not g.is_impossible]
    halves = {"answerable": [g for _, g in answerable], "all": list(gold),
              "answerable_even": [g for i, g in answerable if i % 2 == 0],
              "answerable_odd": [g for i, g in answerable if i % 2 == 1]}
    return {name: round(precision_at_1(search, items), 4) for name, items in halves.items()}


def hit_rate(search: Search, items: Sequence[tuple[str, str]], k: int) -> float:
    """Share of (query, gold passage) pairs with the gold passage in the top k."""
    hits = sum(gold in {c.document_id for c in search(query)[:k]} for query, gold in items)
    return hits / len(items) if items else 0.0


def follow_ups(gold: Sequence[GoldAnswer]) -> list[FollowUp]:
    """The follow-up set: each answerable question after another on the same passage,
    with the names it shares with that previous question (or its answer) replaced by a
    pronoun ("they" for a plural, else "it"), as a user would ask it next. Questions
    with nothing to replace are left out."""
    pairs = []
    for previous, item in zip(gold, gold[1:], strict=False):
        if item.is_impossible or previous.gold_passage != item.gold_passage:
            continue
        said = f"{previous.question} {' '.join(previous.answers)}".lower()
        question = _NAME.sub(lambda m, said=said: _pronoun(m, said), item.question)
        if question != item.question and _REFERRING.search(question):
            pairs.append(FollowUp(previous, replace(item, question=question), item.question))
    return pairs


def _pronoun(match: re.Match[str], said: str) -> str:
    name = match.group(2)
    base = name.removesuffix("'s")
    if match.start(2) == 0 or base.lower() not in said:
        return match.group(0)
    plural = base.endswith("s")
    if base != name:
        return "their" if plural else "its"
    return "they" if plural else "it"


def follow_up_queries(pairs: Sequence[FollowUp]) -> dict[str, list[tuple[str, str]]]:
    """(query, gold) per variant: the original question (no pronoun, the ceiling), the
    follow-up as asked, and the follow-up rewritten by the rule from a history of the
    previous question and its gold answer (as a correct assistant would give it)."""
    original, asked, rewritten = [], [], []
    for pair in pairs:
        history = [HistoryTurn("user", pair.previous.question)]
        if pair.previous.answers:
            history.append(HistoryTurn("assistant", pair.previous.answers[0]))
        gold = pair.question.gold_passage
        original.append((pair.original, gold))
        asked.append((pair.question.question, gold))
        rewritten.append((heuristic_rewrite(pair.question.question, history).query, gold))
    return {"original": original, "as_asked": asked, "rewritten": rewritten}


def dense_top_scores(retriever: Retriever, gold: Sequence[GoldAnswer]) -> list[float]:
    """The best dense cosine per question (-1 when nothing is found)."""
    scores = []
    for item in gold:
        chunks = retriever.search(item.question, top_k=1, mode="dense").chunks
        scores.append(chunks[0].score if chunks else -1.0)
    return scores


def threshold_curve(
    scores: Sequence[float], impossible: Sequence[bool], thresholds: Sequence[float]
) -> list[dict[str, float]]:
    """Refusal rate (unanswerable) and false-refusal rate (answerable) when refusing
    below each threshold."""
    neg = [s for s, imp in zip(scores, impossible, strict=True) if imp]
    pos = [s for s, imp in zip(scores, impossible, strict=True) if not imp]
    return [{"threshold": t,
             "refusal_rate": round(sum(s < t for s in neg) / max(len(neg), 1), 4),
             "false_refusal_rate": round(sum(s < t for s in pos) / max(len(pos), 1), 4)}
            for t in thresholds]
