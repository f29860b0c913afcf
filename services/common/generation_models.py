"""The embedding model of each index generation, loaded once per process.

A generation names its model by `model_uri`: a folder, or `models:/ragchat-embedder/<v>`
(downloaded by MLflow once into the model cache folder); '' is the process's configured
model (RAGCHAT_EMBEDDING_MODEL_PATH). A loaded folder must have the identity the
generation recorded, so vectors of two models never meet in one generation.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from pathlib import Path

from services.common.embeddings import EmbeddingProvider, build_embeddings
from services.common.generations import Generation

logger = logging.getLogger(__name__)

_MODELS_URI = re.compile(r"^models:/(?P<name>[\w.\-]+)/(?P<version>\d+)$")
ST_DATA_PATH = "model.sentence_transformer"  # mlflow's sentence_transformers flavour


def local_model_dir(uri: str, cache_dir: str) -> str:
    """A local sentence-transformers folder for `uri` (a folder, or models:/NAME/VERSION)."""
    match = _MODELS_URI.match(uri)
    if match is None:
        if not os.path.isdir(uri):
            raise ValueError(f"embedding model folder {uri!r} does not exist")
        return uri
    target = Path(cache_dir) / f"{match['name']}-{match['version']}"
    if not target.is_dir():
        import mlflow  # deferred: slow to import, only needed for registry models

        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=tmp))
            source = local / ST_DATA_PATH if (local / ST_DATA_PATH).is_dir() else local
            try:  # an atomic rename: a concurrent download of the same version loses
                os.rename(source, target)
            except OSError:
                if not target.is_dir():
                    raise
        logger.info("downloaded %s to %s", uri, target)
    return str(target)


class GenerationModels:
    """Embedding providers by generation; thread-safe, each model loaded once."""

    def __init__(
        self, configured: EmbeddingProvider, device: str = "cpu",
        cache_dir: str = "data/models/registry", precision: str = "fp32",
    ) -> None:
        self.configured = configured
        self._device = device
        self._precision = precision
        self._cache_dir = cache_dir
        self._loaded: dict[int, EmbeddingProvider] = {}
        self._lock = threading.Lock()

    def for_generation(self, generation: Generation) -> EmbeddingProvider:
        """The generation's model (loading it on first use); ValueError if it is not the
        model the generation was built with."""
        if not generation.model_uri:
            return self.configured
        with self._lock:
            provider = self._loaded.get(generation.id)
            if provider is None:
                provider = self._load(generation)
                self._loaded[generation.id] = provider
        return provider

    def _load(self, generation: Generation) -> EmbeddingProvider:
        path = local_model_dir(generation.model_uri, self._cache_dir)
        provider = build_embeddings("sentence-transformers", path, self._device,
                                    self._precision)
        if generation.model_id and provider.model_id != generation.model_id:
            raise ValueError(
                f"generation {generation.id} was built with {generation.model_id} but "
                f"{generation.model_uri} now holds {provider.model_id}")
        if provider.dimension != generation.dim:
            raise ValueError(f"generation {generation.id} stores {generation.dim}-d vectors "
                             f"but its model produces {provider.dimension}-d ones")
        logger.info("loaded the model of index generation %s", generation.label)
        return provider

    def keep_only(self, generation_ids: set[int]) -> None:
        """Forget the models of generations no longer in use (retired, failed)."""
        with self._lock:
            for gid in [g for g in self._loaded if g not in generation_ids]:
                del self._loaded[gid]

