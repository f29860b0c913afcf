"""The Optuna study: TPE (seeded), median pruning over query batches, resumable storage,
and one nested MLflow run per trial under a parent run kept across restarts."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from mlops.evaluate_rag.tracking import metric_name, tracking_uri
from mlops.tune.harness import Harness
from mlops.tune.space import baseline_params, suggest

logger = logging.getLogger(__name__)

PARENT_RUN_ATTR = "mlflow_parent_run_id"
SETTINGS_ATTR = "settings"
BATCHES = 4  # intermediate nDCG reports per trial, for the pruner
METRIC = "dev_ndcg_at_10"
HEARTBEAT_S = 5


@dataclass(frozen=True)
class StudySpec:
    name: str
    storage: str
    seed: int
    chunk_tokens: Sequence[int]
    chunk_overlaps: Sequence[int]
    experiment: str
    mlflow_uri: str = ""


def open_study(spec: StudySpec, base: dict[str, Any]) -> optuna.Study:
    """The study in `spec.storage` (created, or loaded to resume); a new one starts
    with today's configuration as its first trial."""
    # Multivariate TPE models the parameters jointly (fusion k and weights interact);
    # Optuna still labels it experimental.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    sampler = optuna.samplers.TPESampler(seed=spec.seed, multivariate=True, group=True)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    # A trial whose process died (no heartbeat for HEARTBEAT_S * 2) is failed and run
    # again with the same parameters, so an interrupted study loses no trial.
    storage = optuna.storages.RDBStorage(
        spec.storage, heartbeat_interval=HEARTBEAT_S, grace_period=2 * HEARTBEAT_S,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2))
    study = optuna.create_study(study_name=spec.name, storage=storage, sampler=sampler,
                                pruner=pruner, direction="maximize", load_if_exists=True)
    space = {"chunk_tokens": list(spec.chunk_tokens), "chunk_overlaps": list(spec.chunk_overlaps)}
    stored = study.user_attrs.get("space")
    if stored is not None and stored != space:
        raise ValueError(f"study {spec.name} searches chunkings {stored}, "
                         f"not {space}: pass the same choices, or a new --study-name")
    study.set_user_attr("space", space)
    if not study.trials:
        study.enqueue_trial(baseline_params(base), user_attrs={"baseline": True})
    return study


def objective(harness: Harness, base: dict[str, Any], query_ids: Sequence[str],
              spec: StudySpec) -> Any:
    """Mean nDCG@10 over `query_ids`; reports after each batch and prunes when told."""

    def run(trial: optuna.Trial) -> float:
        settings = suggest(trial, base, spec.chunk_tokens, spec.chunk_overlaps)
        trial.set_user_attr(SETTINGS_ATTR, settings)

        def report(step: int, value: float) -> None:
            trial.report(value, step)
            if step < BATCHES - 1 and trial.should_prune():
                raise optuna.TrialPruned(f"nDCG@10 {value:.4f} after batch {step + 1}")

        scores = harness.ndcg(settings, query_ids, BATCHES, report)
        return sum(scores.values()) / max(1, len(scores))

    return run


class MlflowTrials:
    """Optuna callback: one nested MLflow run per finished trial, under `parent_id`."""

    def __init__(self, parent_id: str, experiment_id: str) -> None:
        self._parent, self._experiment = parent_id, experiment_id

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        import mlflow

        with mlflow.start_run(experiment_id=self._experiment, run_name=f"trial-{trial.number}",
                              parent_run_id=self._parent):
            mlflow.log_params({k: str(v) for k, v in trial.params.items()})
            mlflow.set_tags({"optuna.state": trial.state.name,
                             "optuna.trial": str(trial.number), "optuna.study": study.study_name})
            if trial.value is not None:
                mlflow.log_metric(METRIC, trial.value)
            for step, value in trial.intermediate_values.items():
                mlflow.log_metric("intermediate_ndcg_at_10", value, step=step)


def parent_run(study: optuna.Study, spec: StudySpec, params: dict[str, Any]) -> tuple[str, str]:
    """(parent run id, experiment id): the study's own parent run, reopened on resume."""
    import mlflow

    from mlops.evaluate_rag.tracking import _experiment_id

    uri = tracking_uri(spec.mlflow_uri)
    mlflow.set_tracking_uri(uri)
    experiment_id = _experiment_id(mlflow, spec.experiment, uri)
    run_id = study.user_attrs.get(PARENT_RUN_ATTR)
    if run_id is None:
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"tune:{spec.name}") as run:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            run_id = run.info.run_id
        study.set_user_attr(PARENT_RUN_ATTR, run_id)
    return str(run_id), experiment_id


def finish_parent(study: optuna.Study, run_id: str, out_dir: Path) -> None:
    """Log the best trial's settings and value, and the importance plot, on the parent."""
    import mlflow

    best = study.best_trial
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metric(f"best_{METRIC}", float(best.value or 0.0))
        mlflow.log_metrics({f"best_{metric_name(k)}": float(v) for k, v in best.params.items()
                            if isinstance(v, int | float)})
        mlflow.set_tags({"best_trial": str(best.number),
                         "best_params": json.dumps(best.params)[:4000]})
        mlflow.log_dict(best.user_attrs.get(SETTINGS_ATTR, {}), "best_settings.json")
        plot = importance_plot(study, out_dir)
        if plot is not None:
            mlflow.log_artifact(str(plot))


def importance_plot(study: optuna.Study, out_dir: Path) -> Path | None:
    """The parameter-importance plot as a PNG; None while there is too little to judge."""
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(done) < 2 or len({t.value for t in done}) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization.matplotlib import plot_param_importances

    try:
        axes = plot_param_importances(study)
    except (RuntimeError, ValueError) as exc:  # e.g. parameters that never varied
        logger.warning("no importance plot: %s", exc)
        return None
    path = out_dir / "param_importances.png"
    out_dir.mkdir(parents=True, exist_ok=True)
    axes.figure.savefig(path, dpi=100, bbox_inches="tight")
    return path
