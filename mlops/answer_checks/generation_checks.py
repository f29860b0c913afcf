"""Checks that need the LLM, on a bounded seeded subset: EM/F1, first-citation accuracy,
and refusal / false refusal per answer-support threshold."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tqdm import tqdm

from mlops.evaluate_rag.answer_metrics import AnswerRecord, summarize
from mlops.evaluate_rag.answers_eval import GoldAnswer
from services.common.types import ScoredChunk
from services.generation.answering import NO_ANSWER_TEXT, Answerer
from services.generation.citations import renumber, strip_markers, support


@dataclass(frozen=True)
class Generated:
    """One answered question with what calibration needs."""

    item: GoldAnswer
    prediction: str
    model_refused: bool
    first_citation: str
    best_coverage: float  # answer-term coverage of the best supporting passage
    gold_in_context: bool
    text: str = ""  # the answer as the model numbered it ([n] = the n-th context passage)


def subset(gold: Sequence[GoldAnswer], answerable: int, unanswerable: int,
           seed: int) -> list[GoldAnswer]:
    """A seeded sample of each kind, in dataset order."""
    rng = random.Random(seed)
    pos = [g for g in gold if not g.is_impossible]
    neg = [g for g in gold if g.is_impossible]
    picked = {g.question_id for g in rng.sample(pos, min(answerable, len(pos)))}
    picked |= {g.question_id for g in rng.sample(neg, min(unanswerable, len(neg)))}
    return [g for g in gold if g.question_id in picked]


def generate(
    answerer: Answerer, search: Callable[[str], Sequence[ScoredChunk]],
    items: Sequence[GoldAnswer], max_tokens: int, progress: bool,
) -> tuple[list[Generated], float]:
    """Answer every item (min_support off: thresholds are applied afterwards)."""
    started, rows = time.perf_counter(), []
    for item in tqdm(items, desc="answering", unit="question", disable=not progress):
        chunks = list(search(item.question))
        answer = answerer.answer(item.question, chunks, (), max_tokens)
        prediction = "" if answer.text == NO_ANSWER_TEXT else strip_markers(answer.text)
        coverage = max((support(prediction, item.question, c.text).coverage
                        for c in answer.citations), default=0.0)
        rows.append(Generated(
            item, prediction, answer.refused,
            answer.citations[0].document_id if answer.citations else "",
            coverage, item.gold_passage in {c.document_id for c in chunks},
            renumber(answer.text, {new: old for old, new in answer.renumbered.items()})))
    return rows, time.perf_counter() - started


def _refused(row: Generated, min_support: float, refuse_empty: bool = False) -> bool:
    """Whether the service would refuse with RAGCHAT_MIN_ANSWER_SUPPORT=min_support
    (and, with refuse_empty, when the model wrote no answer at all)."""
    if not row.prediction:
        return row.model_refused or refuse_empty
    return row.model_refused or row.best_coverage < min_support


def summary_at(rows: Sequence[Generated], min_support: float,
               refuse_empty: bool = False) -> dict[str, float | int | bool]:
    """EM/F1, refusal rates and first-citation accuracy at one operating point."""
    refused = {r.item.question_id: _refused(r, min_support, refuse_empty) for r in rows}
    records = [AnswerRecord(r.item.question_id, r.prediction, r.item.answers,
                            r.item.is_impossible, refused[r.item.question_id]) for r in rows]
    answerable = [r for r in rows if not r.item.is_impossible]
    first = sum(r.first_citation == r.item.gold_passage and not refused[r.item.question_id]
                for r in answerable)
    first_in_context = [r for r in answerable if r.gold_in_context]
    first_ctx = sum(r.first_citation == r.item.gold_passage for r in first_in_context)
    return {
        "min_answer_support": min_support,
        "refuse_empty": refuse_empty,
        "empty_answers": sum(not r.prediction for r in rows),
        **{k: round(v, 4) if isinstance(v, float) else v
           for k, v in summarize(records).items()},
        "first_citation_gold": round(first / max(len(answerable), 1), 4),
        "first_citation_gold_when_in_context": round(
            first_ctx / max(len(first_in_context), 1), 4),
        "gold_in_context": round(len(first_in_context) / max(len(answerable), 1), 4),
    }
