"""Register serving configurations as versions of MLflow model `ragchat-rag`, and read
them back by alias."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.evaluate_rag.tracking import _experiment_id, metric_name, tracking_uri
from mlops.registry.config import MODEL_NAME, serving_payload
from services.common.serving_config import CONFIG_FILE

logger = logging.getLogger(__name__)

EXPERIMENT = "ragchat-registry"
ARTIFACT_PATH = "ragchat-rag"


@dataclass(frozen=True)
class Registered:
    version: str
    settings: dict[str, Any]
    metrics: dict[str, float]
    run_id: str
    requires: dict[str, Any] = field(default_factory=dict)  # e.g. {"ragchat-embedder": "3"}


def _client(uri: str = "") -> Any:
    import mlflow
    from mlflow import MlflowClient

    resolved = tracking_uri(uri)
    mlflow.set_tracking_uri(resolved)
    return MlflowClient(resolved)


def register(
    settings: dict[str, Any], metrics: dict[str, float], alias: str | None,
    embedder_version: str | None = None, source: str = "", uri: str = "",
) -> Registered:
    """Log config.json in a run, register it as a new version, and point `alias` at it."""
    import mlflow

    client = _client(uri)
    payload = serving_payload(settings, metrics, embedder_version, source)
    experiment_id = _experiment_id(mlflow, EXPERIMENT, tracking_uri(uri))
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"config:{source or 'manual'}",
                          tags={"ragchat.source": source}) as run:
        mlflow.log_dict(payload, f"{ARTIFACT_PATH}/{CONFIG_FILE}")
        mlflow.log_metrics({metric_name(k): float(v) for k, v in metrics.items()})
        mlflow.log_params({k: str(v)[:500] for k, v in payload["settings"].items()})
    try:
        client.create_registered_model(MODEL_NAME, description=(
            "ragchat serving configuration (retrieval, chunking, generation) as config.json"))
    except Exception:  # noqa: BLE001 - it exists already
        pass
    version = client.create_model_version(
        MODEL_NAME, source=f"runs:/{run.info.run_id}/{ARTIFACT_PATH}", run_id=run.info.run_id,
        tags={metric_name(k): f"{v:.6g}" for k, v in metrics.items()},
        description=f"from {source or 'manual'}").version
    if alias:
        client.set_registered_model_alias(MODEL_NAME, alias, str(version))
    logger.info("registered %s version %s%s", MODEL_NAME, version,
                f" as {alias}" if alias else "")
    return Registered(str(version), payload["settings"], metrics, run.info.run_id)


def load(alias: str, uri: str = "") -> Registered | None:
    """The version `alias` points at, or None when no version carries it."""
    import mlflow

    client = _client(uri)
    try:
        found = client.get_model_version_by_alias(MODEL_NAME, alias)
    except Exception as exc:  # noqa: BLE001 - MLflow raises one type for "no such alias"
        if "RESOURCE_DOES_NOT_EXIST" in str(exc) or "not found" in str(exc).lower():
            return None
        raise
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(f"models:/{MODEL_NAME}/{found.version}",
                                                    dst_path=tmp)
        payload = json.loads((Path(local) / CONFIG_FILE).read_text(encoding="utf-8"))
    return Registered(str(found.version), payload["settings"], payload.get("metrics", {}),
                      str(found.run_id), dict(payload.get("requires") or {}))


def set_alias(alias: str, version: str, uri: str = "") -> None:
    _client(uri).set_registered_model_alias(MODEL_NAME, alias, version)
