"""Answer metrics of the official SQuAD 2.0 script, plus refusal rates."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


@dataclass(frozen=True)
class AnswerRecord:
    question_id: str
    prediction: str
    golds: tuple[str, ...]
    is_impossible: bool
    refused: bool


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    norm = normalize_answer(prediction)
    return float(any(norm == normalize_answer(g) for g in golds))


def _f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    return max((_f1(prediction, g) for g in golds), default=0.0)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def summarize(records: Iterable[AnswerRecord]) -> dict[str, float | int]:
    """EM and F1 over answerable questions (a refusal scores 0), and refusal rates."""
    records = list(records)
    answerable = [r for r in records if not r.is_impossible]
    impossible = [r for r in records if r.is_impossible]
    return {
        "exact_match": _mean([0.0 if r.refused else exact_match(r.prediction, r.golds)
                              for r in answerable]),
        "f1": _mean([0.0 if r.refused else token_f1(r.prediction, r.golds)
                     for r in answerable]),
        "refusal_rate": _mean([float(r.refused) for r in impossible]),
        "false_refusal_rate": _mean([float(r.refused) for r in answerable]),
        "answerable": len(answerable),
        "unanswerable": len(impossible),
    }
