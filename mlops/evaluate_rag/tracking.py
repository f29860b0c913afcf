"""Log evaluation runs to MLflow: the configured tracking server, else ./mlruns."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


LOCAL_DIR = Path("mlruns")
CONFIG_VERSION_TAG = "ragchat.config.version"


def tracking_uri(explicit: str = "") -> str:
    """--mlflow-uri, else MLFLOW_TRACKING_URI, else SQLite in a local `mlruns` folder.

    (MLflow 3 refuses new plain-file stores, so the local folder holds a database.)
    """
    uri = explicit or os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri:
        return uri
    LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(LOCAL_DIR / 'mlflow.db').resolve()}"


def _experiment_id(mlflow: Any, name: str, uri: str) -> str:
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if uri.startswith("sqlite:"):  # keep local artifacts beside the database
        location = (LOCAL_DIR / "artifacts").resolve().as_uri()
    return str(mlflow.create_experiment(name, artifact_location=location))


def metric_name(key: str) -> str:
    """MLflow metric names cannot hold '@': "ndcg@10" becomes "ndcg_at_10"."""
    return re.sub(r"[^\w\-. /]", "_", key.replace("@", "_at_"))


def config_version() -> str:
    """The serving configuration the evaluated settings came from ("env" when none)."""
    from services.common.serving_config import CONFIG_URI_ENV, ENV_VERSION, resolve

    uri = os.environ.get(CONFIG_URI_ENV, "")
    return resolve(uri).label if uri else ENV_VERSION


def log_run(
    experiment: str,
    run_name: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    artifacts: Mapping[str, Any] | None = None,
    uri: str = "",
) -> str:
    """Log one run; returns its run id."""
    import mlflow  # deferred: slow to import, and only needed here

    resolved = tracking_uri(uri)
    mlflow.set_tracking_uri(resolved)
    experiment_id = _experiment_id(mlflow, experiment, resolved)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name,
                          tags={CONFIG_VERSION_TAG: config_version()}) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({metric_name(k): float(v) for k, v in metrics.items()})
        for name, payload in (artifacts or {}).items():
            mlflow.log_dict(payload, name)
        logger.info("logged MLflow run %s to %s", run.info.run_id, mlflow.get_tracking_uri())
        return str(run.info.run_id)
