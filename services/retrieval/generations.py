"""Retrieval follows the active index generation (see services.common.generations).

Every dense query takes one (generation, model, store) snapshot and embeds with that
generation's model and searches that generation's vectors, so a query is never
embedded by one model and compared with another's vectors. The active generation is
looked up at most every `poll_s` (RAGCHAT_GENERATION_POLL_S); a background task loads
the model of a generation as soon as it is `ready`, so the switch costs no query a
model load.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from services.common.embeddings import EmbeddingProvider, EmbeddingWrapper
from services.common.generation_models import GenerationModels
from services.common.generations import Generation, all_generations
from services.common.health import GENERATION_PREFIX
from services.common.runner import pause
from services.common.vectorstore.pgvector import PgVectorStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """What one query uses: a generation, its model and a store bound to it."""

    generation: Generation
    embeddings: EmbeddingProvider
    store: PgVectorStore


class ActiveIndex:
    """The active generation's route, and the preloaded routes of ready generations."""

    def __init__(
        self, store: PgVectorStore, models: GenerationModels,
        wrap: Callable[[EmbeddingProvider], EmbeddingProvider] = lambda e: e,
    ) -> None:
        self._store = store
        self._models = models
        self._wrap = wrap  # e.g. the query batcher, one per model
        self._routes: dict[int, Route] = {}
        self._lock = threading.Lock()
        self._active_id = 0
        self.active: Route | None = None  # the last route a query or refresh took

    def route(self, fresh: bool = False) -> Route:
        """The active generation's route (`fresh`: look the generation up now)."""
        generation = self._store.active_generation(fresh=fresh)
        route = self._route_for(generation)
        self.active = route
        if generation.id != self._active_id:
            logger.info("searching index generation %s", generation.label)
            self._active_id = generation.id
        return route

    def _route_for(self, generation: Generation) -> Route:
        with self._lock:
            route = self._routes.get(generation.id)
            if route is None:
                model = self._wrap(self._models.for_generation(generation))
                route = Route(generation, model, self._store.at(generation))
                self._routes[generation.id] = route
        return route

    def refresh(self) -> None:
        """Preload ready generations' models; forget retired and failed ones."""
        with self._store.pool.connection() as conn:
            generations = all_generations(conn)
        keep = {g.id for g in generations if g.state in ("ready", "active")}
        for generation in generations:
            if generation.state != "ready":
                continue
            try:  # a model that cannot load must not stop the one that serves
                self._route_for(generation)
            except Exception:  # noqa: BLE001 - logged; the switch would load it again
                logger.warning("could not preload the model of generation %s",
                               generation.label, exc_info=True)
        with self._lock:
            for gid in [g for g in self._routes if g not in keep]:
                del self._routes[gid]
        self._models.keep_only(keep)
        self.route(fresh=True)

    def health_notes(self) -> list[str]:
        """"generation/<id>/<model id>" of the generation searched (no I/O)."""
        route = self.active
        if route is None:
            return []
        return [f"{GENERATION_PREFIX}{route.generation.id}/{route.embeddings.model_id}"]

    async def follow(self, stop: asyncio.Event, poll_s: float) -> None:
        """Refresh every `poll_s` until `stop` (a failed refresh is retried, never fatal)."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # noqa: BLE001 - queries still look generations up themselves
                logger.warning("could not refresh index generations", exc_info=True)
            await pause(stop, poll_s)


class ActiveEmbeddings(EmbeddingWrapper):
    """The active generation's model, for callers that only embed (the Embed RPC)."""

    def __init__(self, index: ActiveIndex, configured: EmbeddingProvider) -> None:
        super().__init__(configured)
        self._index = index

    @property
    def wrapped(self) -> EmbeddingProvider:
        return self._index.route().embeddings

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.wrapped.embed_documents(texts)
