"""--embedding-model: a folder, or models:/ragchat-embedder/<version or @alias>."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from services.common.embeddings import EmbeddingProvider, build_embeddings
from services.common.generation_models import local_model_dir

_REGISTRY = re.compile(r"^models:/(?P<name>[\w.\-]+)(?:@(?P<alias>[\w\-]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class ResolvedModel:
    """`uri` is what every process loads: an absolute folder or models:/NAME/VERSION
    (an alias is pinned to its version now, so a later alias move changes nothing)."""

    uri: str
    path: str
    provider: EmbeddingProvider


def resolve_model(spec: str, cache_dir: str, device: str = "cpu",
                  tracking_uri: str = "", precision: str = "fp32") -> ResolvedModel:
    """Resolve and load the model; ValueError when it cannot be found."""
    match = _REGISTRY.match(spec.strip())
    if match is None:
        path = os.path.abspath(spec)
        if not os.path.isdir(path):
            raise ValueError(f"--embedding-model {spec!r} is neither a folder nor "
                             "models:/NAME/VERSION or models:/NAME@ALIAS")
        uri = path
    else:
        version = match["version"] or _alias_version(match["name"], match["alias"], tracking_uri)
        uri = f"models:/{match['name']}/{version}"
        path = local_model_dir(uri, cache_dir)
    provider = build_embeddings("sentence-transformers", path, device, precision)
    provider.dimension  # noqa: B018 - loads the model now: a broken folder fails here
    return ResolvedModel(uri, path, provider)


def _alias_version(name: str, alias: str, tracking_uri: str) -> str:
    from mlflow import MlflowClient

    from mlops.evaluate_rag.tracking import tracking_uri as resolve_tracking

    try:
        found = MlflowClient(resolve_tracking(tracking_uri)).get_model_version_by_alias(
            name, alias)
    except Exception as exc:  # noqa: BLE001 - one clear line for the operator
        raise ValueError(f"models:/{name}@{alias} could not be resolved: {exc}") from exc
    return str(found.version)
