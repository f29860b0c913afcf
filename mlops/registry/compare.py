"""Champion against challenger: paired retrieval comparison on dev, and the answer check.

The decision rule. Both configurations rank the same dev queries; d_q is the challenger's
nDCG@10 minus the champion's on query q. The challenger must win by more than
max(margin, z * SE), SE = stdev(d) / sqrt(n) (the standard error of the mean paired
difference; z = 1.645, a one-sided 95% test). With SciFact's 162 dev queries the SE
of a real configuration change is about 0.005-0.01, so noise alone rarely promotes, and
a lift must be worth a redeploy (`margin`). It must also not lose more than
`answers_tolerance` token F1 on the answer set (the Normans set: SQuAD-style).
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.evaluate_rag.answers_eval import GoldAnswer, evaluate_answers, load_answers
from mlops.evaluate_rag.beir import load_beir
from mlops.evaluate_rag.context import EvalContext
from mlops.splits import load_split
from mlops.tune.harness import Harness
from mlops.tune.run import sample_ids

Z_ONE_SIDED_95 = 1.645


@dataclass(frozen=True)
class Paired:
    champion: float
    challenger: float
    diff: float
    se: float
    required: float
    queries: int

    @property
    def wins(self) -> bool:
        return self.diff > self.required


def paired(champion: dict[str, float], challenger: dict[str, float], margin: float) -> Paired:
    """The paired comparison of two per-query score maps over the same queries."""
    qids = sorted(champion)
    diffs = [challenger[q] - champion[q] for q in qids]
    n = len(diffs)
    se = statistics.stdev(diffs) / math.sqrt(n) if n > 1 else 0.0
    mean = statistics.fmean
    return Paired(champion=mean(champion.values()), challenger=mean(challenger.values()),
                  diff=mean(diffs), se=se, required=max(margin, Z_ONE_SIDED_95 * se), queries=n)


@functools.lru_cache(maxsize=2)
def _provider(generation: Any) -> Any:
    """One LLM per generation settings (they are frozen, hence hashable)."""
    from services.generation.providers.factory import provider_from_settings

    return provider_from_settings(generation)


def answer_scores(
    harness: Harness, settings: dict[str, Any], gold: Sequence[GoldAnswer], limit: int | None,
    progress: bool,
) -> dict[str, float | int | str]:
    """The answer evaluation (EM, F1, refusal rates) of `settings` on `gold`."""
    from services.generation.answering import Answerer
    from services.generation.config import GenerationSettings

    generation = GenerationSettings(**{k: v for k, v in settings.items()
                                       if k in GenerationSettings.model_fields})
    answerer = Answerer(_provider(generation),
                        max_context_chunks=generation.max_context_chunks,
                        min_support=generation.min_answer_support)
    retriever, mode = harness.retriever(settings)
    key = (int(settings["chunk_tokens"]), int(settings["chunk_overlap_tokens"]))
    ctx = EvalContext(harness.dataset, retriever, harness.reports[key], "tune",
                      harness.embeddings.model_name, {"mode": mode})
    summary, _ = evaluate_answers(ctx, answerer, list(gold), generation.max_context_chunks,
                                  generation.max_tokens, limit, progress)
    return summary


def compare(
    args: argparse.Namespace, champion: dict[str, Any], challenger: dict[str, Any]
) -> tuple[str | None, list[str], dict[str, float]]:
    """(why the challenger is refused, or None; the comparison table's rows; its figures)."""
    from mlops.promote import default_work_dir

    dataset = load_split(args.dataset, args.split)
    if not dataset.queries:
        raise ValueError(f"the {args.split} split of {args.dataset} has no judged queries")
    qids = sample_ids(list(dataset.queries), args.sample, 13)
    work_dir = Path(args.work_dir) if args.work_dir else default_work_dir(args.dataset)
    progress = not args.no_progress
    with Harness(dataset, work_dir, Path(args.cache_dir), progress) as harness:
        result = paired(harness.ndcg(champion, qids), harness.ndcg(challenger, qids),
                        args.margin)
    rows = [f"{args.split + ' nDCG@10 (' + str(result.queries) + ' queries)':<34}"
            f"{result.champion:>16.4f}{result.challenger:>18.4f}",
            f"{'  difference (SE)':<34}{'':>16}{result.diff:>+11.4f} ({result.se:.4f})",
            f"{'  required lift':<34}{'':>16}{result.required:>18.4f}"]
    verdict = None if result.wins else (
        f"nDCG@10 lift {result.diff:+.4f} is not above the required {result.required:.4f}")
    figures = {"champion_ndcg_at_10": result.champion, "challenger_ndcg_at_10": result.challenger,
               "ndcg_diff": result.diff, "ndcg_diff_se": result.se, "required": result.required}
    if args.answers_dataset and verdict is None:
        answers = load_beir(args.answers_dataset, "test")
        gold = load_answers(args.answers_dataset)
        with Harness(answers, work_dir, Path(args.cache_dir), progress,
                     namespace="answers") as harness:
            before = answer_scores(harness, champion, gold, args.answers_sample, progress)
            after = answer_scores(harness, challenger, gold, args.answers_sample, progress)
        for key, label in (("f1", "answer token F1"), ("exact_match", "answer exact match"),
                           ("refusal_rate", "refusal rate (unanswerable)"),
                           ("false_refusal_rate", "refusal rate (answerable)")):
            rows.append(f"{label:<34}{float(before[key]):>16.4f}{float(after[key]):>18.4f}")
            figures[f"champion_{key}"] = float(before[key])
            figures[f"challenger_{key}"] = float(after[key])
        loss = float(before["f1"]) - float(after["f1"])
        if loss > args.answers_tolerance:
            verdict = (f"answer F1 drops by {loss:.4f} (more than the tolerated "
                       f"{args.answers_tolerance:.4f})")
    return verdict, rows, figures
