"""One `python -m mlops.tune` invocation: load the split, run (or resume) the study, log."""

from __future__ import annotations

import argparse
import hashlib
import logging
from pathlib import Path
from typing import Any

import optuna

from mlops.registry.config import CHALLENGER, default_settings
from mlops.splits import load_split
from mlops.tune.harness import Harness
from mlops.tune.study import (
    METRIC,
    SETTINGS_ATTR,
    MlflowTrials,
    StudySpec,
    finish_parent,
    objective,
    open_study,
    parent_run,
)

logger = logging.getLogger(__name__)


def sample_ids(query_ids: list[str], n: int | None, seed: int) -> list[str]:
    """A fixed sample: the first `n` ids in sha256(seed:qid) order (all when n is None)."""
    if n is None or n >= len(query_ids):
        return sorted(query_ids)
    ordered = sorted(query_ids, key=lambda q: hashlib.sha256(f"s{seed}:{q}".encode()).digest())
    return sorted(ordered[:n])


def tune(args: argparse.Namespace) -> dict[str, Any]:
    """Run `args.trials` more trials; returns the baseline and best values and settings."""
    from mlops.tune.__main__ import default_work_dir

    dataset = load_split(args.dataset, args.split)
    if not dataset.queries:
        raise ValueError(f"the {args.split} split of {args.dataset} has no judged queries")
    query_ids = sample_ids(list(dataset.queries), args.sample, args.seed)
    work_dir = Path(args.work_dir) if args.work_dir else default_work_dir(args.dataset)
    work_dir.mkdir(parents=True, exist_ok=True)
    base = default_settings()
    spec = study_spec(args, base, work_dir)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(spec, base)
    run_id, experiment_id = parent_run(study, spec, {
        "dataset": args.dataset, "split": args.split, "queries": len(query_ids),
        "seed": args.seed, "storage": spec.storage, "study": spec.name})
    with Harness(dataset, work_dir, Path(args.cache_dir), not args.no_progress) as harness:
        study.optimize(objective(harness, base, query_ids, spec), n_trials=args.trials,
                       callbacks=[MlflowTrials(run_id, experiment_id)],
                       show_progress_bar=not args.no_progress, gc_after_trial=False)
    finish_parent(study, run_id, work_dir / "plots")
    best = study.best_trial
    baseline = next((t for t in study.trials if t.user_attrs.get("baseline")
                     and t.state == optuna.trial.TrialState.COMPLETE), None)
    also = None
    if args.also_score:
        also = score_on(args, work_dir, base, best.user_attrs.get(SETTINGS_ATTR, base))
    result: dict[str, Any] = {
        "study": spec.name, "trials": len(study.trials), "split": args.split,
        "queries": len(query_ids), "best_trial": best.number,
        "best": round(float(best.value or 0.0), 4),
        "baseline": round(float(baseline.value), 4) if baseline and baseline.value else 0.0,
        "best_settings": best.user_attrs.get(SETTINGS_ATTR, {}), "mlflow_parent_run": run_id,
    }
    if also is not None:
        result["also"] = also
    if args.register:
        from mlops.registry.store import register

        registered = register(result["best_settings"], {METRIC: result["best"]}, CHALLENGER,
                              embedder_version=args.embedder_version,
                              source=f"tune:{spec.name}#{best.number}", uri=args.mlflow_uri)
        result["registered_version"] = registered.version
    return result


def study_spec(args: argparse.Namespace, base: dict[str, Any], work_dir: Path) -> StudySpec:
    """The study the arguments name; its chunking choices must include today's."""
    spec = StudySpec(
        name=args.study_name or f"tune-{Path(args.dataset).resolve().name}",
        storage=args.storage or f"sqlite:///{(work_dir / 'optuna.db').resolve()}",
        seed=args.seed,
        chunk_tokens=args.chunk_tokens or [base["chunk_tokens"]],
        chunk_overlaps=args.chunk_overlaps or [base["chunk_overlap_tokens"]],
        experiment=args.experiment, mlflow_uri=args.mlflow_uri)
    if base["chunk_tokens"] not in spec.chunk_tokens or \
            base["chunk_overlap_tokens"] not in spec.chunk_overlaps:
        raise ValueError("--chunk-tokens/--chunk-overlaps must include today's chunking "
                         f"({base['chunk_tokens']}/{base['chunk_overlap_tokens']})")
    return spec


def score_on(args: argparse.Namespace, work_dir: Path, base: dict[str, Any],
             best: dict[str, Any]) -> dict[str, Any]:
    """Today's and the best configuration's nDCG@10 on --also-score's split (same index)."""
    dataset = load_split(args.dataset, args.also_score)
    qids = sorted(dataset.queries)
    with Harness(dataset, work_dir, Path(args.cache_dir), not args.no_progress) as harness:
        before, after = harness.ndcg(base, qids), harness.ndcg(best, qids)
    return {"split": args.also_score, "queries": len(qids), "baseline": _mean(before),
            "best": _mean(after)}


def _mean(scores: dict[str, float]) -> float:
    return round(sum(scores.values()) / max(1, len(scores)), 4)
