"""Answer metrics of the official SQuAD 2.0 evaluation script, plus refusal rates.

As in that script, an empty list of gold answers stands for the single gold answer ""
(an unanswerable question): only an empty (after normalisation) prediction matches it.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


@dataclass(frozen=True)
class AnswerRecord:
    """One generated answer: `refused` when the system declined to answer."""

    question_id: str
    prediction: str
    golds: tuple[str, ...]
    is_impossible: bool
    refused: bool


def normalize_answer(s: str) -> str:
    """Lower case, drop punctuation, drop the words a/an/the, collapse whitespace."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", s).split())


def _golds(golds: Sequence[str]) -> Sequence[str]:
    return golds or ("",)


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals some normalised gold, else 0.0."""
    norm = normalize_answer(prediction)
    return float(any(norm == normalize_answer(gold) for gold in _golds(golds)))


def _f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)  # 1.0 only when both are empty
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """Best token-level F1 of the normalised prediction against any gold."""
    return max(_f1(prediction, gold) for gold in _golds(golds))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def summarize(records: Iterable[AnswerRecord]) -> dict[str, float | int]:
    """EM and F1 over answerable questions (a refusal scores 0 on both) and refusal rates.

    refusal_rate: share of unanswerable questions refused (higher is better);
    false_refusal_rate: share of answerable questions refused (lower is better).
    """
    rows = list(records)
    answerable = [r for r in rows if not r.is_impossible]
    unanswerable = [r for r in rows if r.is_impossible]
    return {
        "exact_match": _mean([0.0 if r.refused else exact_match(r.prediction, r.golds)
                              for r in answerable]),
        "f1": _mean([0.0 if r.refused else token_f1(r.prediction, r.golds)
                     for r in answerable]),
        "refusal_rate": _mean([float(r.refused) for r in unanswerable]),
        "false_refusal_rate": _mean([float(r.refused) for r in answerable]),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
    }
