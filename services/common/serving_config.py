"""The serving configuration registered in MLflow (model `ragchat-rag`), read at start-up.

With RAGCHAT_CONFIG_URI=models:/ragchat-rag@champion (or models:/ragchat-rag/3) a
process fetches that model version's config.json from the MLflow server named by
MLFLOW_TRACKING_URI; its "settings" override the environment for the fields a settings
class has, and the version ("ragchat-rag/3") is reported in /health, span resources
and evaluation runs. Without it, settings come from the environment alone.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CONFIG_URI_ENV = "RAGCHAT_CONFIG_URI"
CONFIG_FILE = "config.json"
ENV_VERSION = "env"  # the version reported when no registered configuration is used
_URI = re.compile(r"^models:/(?P<name>[\w.\-]+)(?:@(?P<alias>[\w\-]+)|/(?P<version>\d+))$")
_PROBE_TIMEOUT_S = 5.0


class ServingConfigError(RuntimeError):
    """RAGCHAT_CONFIG_URI is set but names nothing that can be fetched."""


@dataclass(frozen=True)
class ServingConfig:
    """One registered configuration: its version and the settings it fixes."""

    uri: str
    name: str
    version: str
    settings: dict[str, Any] = field(default_factory=dict)
    requires: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"


def parse_uri(uri: str) -> tuple[str, str | None, str | None]:
    """(model name, alias, version) of models:/NAME@ALIAS or models:/NAME/VERSION."""
    match = _URI.match(uri.strip())
    if match is None:
        raise ServingConfigError(
            f"{CONFIG_URI_ENV}={uri!r} is not models:/NAME@ALIAS or models:/NAME/VERSION")
    return match["name"], match["alias"], match["version"]


def _probe(tracking_uri: str) -> None:
    """Fail in seconds (not after MLflow's minutes of retries) when the server is down."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    import httpx

    try:
        httpx.get(f"{tracking_uri.rstrip('/')}/health", timeout=_PROBE_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise ServingConfigError(
            f"{CONFIG_URI_ENV} is set but the MLflow server {tracking_uri} is unreachable "
            f"({type(exc).__name__}); start it or unset {CONFIG_URI_ENV}") from exc


@functools.lru_cache(maxsize=8)
def resolve(uri: str, tracking_uri: str = "") -> ServingConfig:
    """Fetch the configuration `uri` names (cached per process)."""
    name, alias, version = parse_uri(uri)
    tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    if not tracking_uri:
        raise ServingConfigError(f"{CONFIG_URI_ENV} is set but MLFLOW_TRACKING_URI is not")
    _probe(tracking_uri)
    import mlflow  # deferred: slow to import, and only needed here
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    try:
        found = (client.get_model_version_by_alias(name, alias) if alias
                 else client.get_model_version(name, str(version)))
        mlflow.set_tracking_uri(tracking_uri)
        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow.artifacts.download_artifacts(
                f"models:/{name}/{found.version}", dst_path=tmp)
            payload = json.loads((Path(local) / CONFIG_FILE).read_text(encoding="utf-8"))
    except Exception as exc:  # noqa: BLE001 - any failure is "cannot resolve"
        raise ServingConfigError(
            f"{CONFIG_URI_ENV}={uri} could not be resolved on {tracking_uri}: "
            f"{type(exc).__name__}: {str(exc)[:300]}") from exc
    config = ServingConfig(uri, name, str(found.version), dict(payload.get("settings", {})),
                           dict(payload.get("requires", {})))
    logger.info("serving configuration %s (%s)", config.label, uri)
    return config
