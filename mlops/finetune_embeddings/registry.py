"""Log a fine-tuning run to MLflow and register its model as `ragchat-embedder`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mlops.evaluate_rag.tracking import _experiment_id, metric_name, tracking_uri

logger = logging.getLogger(__name__)

REGISTERED_MODEL = "ragchat-embedder"
EXPERIMENT = "ragchat-finetune"


def check_tracking(uri: str = "", experiment: str = EXPERIMENT) -> str:
    """Reach the tracking store and its experiment before any training, so a bad
    --mlflow-uri fails in a second, not after the run; returns the resolved URI."""
    import mlflow

    resolved = tracking_uri(uri)
    mlflow.set_tracking_uri(resolved)
    try:
        _experiment_id(mlflow, experiment, resolved)
    except Exception as exc:  # MLflow raises many kinds: a refused store, no server, ...
        raise ValueError(f"MLflow tracking at {resolved} is not usable: {exc}") from exc
    return resolved


def log_and_register(
    model: Any,
    params: Mapping[str, Any],
    history: list[dict[str, float]],
    metrics: Mapping[str, float],
    uri: str = "",
    experiment: str = EXPERIMENT,
) -> tuple[str, str]:
    """Log params, per-epoch dev metrics (step = epoch) and the final metrics; log the
    model (sentence_transformers flavour) and register it. Returns (run id, version)."""
    import mlflow
    import mlflow.sentence_transformers
    from mlflow.tracking import MlflowClient

    resolved = tracking_uri(uri)
    mlflow.set_tracking_uri(resolved)
    experiment_id = _experiment_id(mlflow, experiment, resolved)
    final = {metric_name(k): float(v) for k, v in metrics.items()}
    with mlflow.start_run(experiment_id=experiment_id, run_name="finetune-embeddings") as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        for row in history:
            epoch = int(row["epoch"])
            mlflow.log_metrics({f"epoch_{metric_name(k)}": float(v) for k, v in row.items()
                                if k != "epoch"}, step=epoch)
        mlflow.log_metrics(final)
        info = mlflow.sentence_transformers.log_model(
            model, name="model", registered_model_name=REGISTERED_MODEL,
        )
        version = str(info.registered_model_version)
    client = MlflowClient(resolved)
    client.update_model_version(REGISTERED_MODEL, version,
                                description=f"fine-tuned embedder, run {run.info.run_id}")
    for key, value in final.items():
        client.set_model_version_tag(REGISTERED_MODEL, version, key, f"{value:.4f}")
    logger.info("registered %s version %s (run %s)", REGISTERED_MODEL, version, run.info.run_id)
    return str(run.info.run_id), version
