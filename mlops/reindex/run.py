"""The reindex itself: build, wait, verify, switch, drop (see mlops.reindex.__main__)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops.reindex.catalog import Catalog
from services.common.embeddings import EmbeddingProvider
from services.common.generations import (
    Generation,
    build_index,
    create_generation,
    drop_vectors,
    get_generation,
    set_state,
    switch_active,
)
from services.ingest.adapters import JobQueue
from services.ingest.reindex import reindex_message

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (documents done, documents in all)


class ReindexFailed(RuntimeError):
    """The new generation was not switched to; the message says why."""


@dataclass(frozen=True)
class Options:
    model_uri: str
    switch: bool = True
    timeout_s: float = 3600.0
    poll_s: float = 1.0
    drain_s: float = 3.0
    smoke_sample: int = 50
    smoke_k: int = 10
    smoke_min_hit_rate: float = 0.8


@dataclass
class Outcome:
    """What happened, for the summary line and MLflow."""

    generation: int = 0
    previous: int = 0
    documents: int = 0
    chunks: int = 0
    smoke_hit_rate: float = 0.0
    switched: bool = False
    resumed: bool = False
    seconds: dict[str, float] = field(default_factory=dict)


class Reindex:
    def __init__(self, catalog: Catalog, queue: JobQueue, model: EmbeddingProvider,
                 options: Options, progress: Progress = lambda done, total: None) -> None:
        self._catalog, self._queue, self._model = catalog, queue, model
        self._options = options
        self._progress = progress
        self.outcome = Outcome()

    def run(self) -> Outcome:
        """Build (or resume), verify, switch and drop; ReindexFailed when not switched."""
        started = time.monotonic()
        generation = self._start()
        self._enqueue(generation)
        self._wait(generation)
        self.outcome.seconds["build"] = time.monotonic() - started
        indexing = time.monotonic()
        build_index(self._catalog.conn, generation)  # uploads keep writing meanwhile
        self.outcome.seconds["index"] = time.monotonic() - indexing
        with self._catalog.conn.transaction():
            set_state(self._catalog.conn, generation.id, "ready")  # retrieval preloads it
        self._verify(generation)
        if self._options.switch:
            self._switch(generation)
        self.outcome.seconds["total"] = time.monotonic() - started
        return self.outcome

    def _start(self) -> Generation:
        """A new building generation, or the unfinished one of the same model (resume)."""
        model_id = self._model.model_id
        active = self._catalog.active()
        if active is not None and active.model_id == model_id:
            raise ReindexFailed(f"generation {active.id} already serves {model_id}")
        self.outcome.previous = active.id if active else 0
        for found in self._catalog.generations():
            if found.state not in ("building", "ready"):
                continue
            if found.model_id != model_id:
                raise ReindexFailed(
                    f"generation {found.id} ({found.model_id}) is being built; let it "
                    "finish or fail before starting another")
            logger.info("resuming generation %s", found.label)
            self.outcome.generation, self.outcome.resumed = found.id, True
            return found
        with self._catalog.conn.transaction():
            generation = create_generation(self._catalog.conn, self._options.model_uri,
                                           model_id, self._model.dimension)
        logger.info("building generation %s", generation.label)
        self.outcome.generation = generation.id
        return generation

    def _enqueue(self, generation: Generation) -> None:
        """One message per document (every tenant). Documents uploaded from now on are
        written to the new generation by their own job."""
        documents = self._catalog.documents()
        for tenant, document_id in documents:
            self._queue.send(reindex_message(generation.id, document_id, tenant))
        logger.info("queued %d documents for generation %s", len(documents), generation.id)

    def _wait(self, generation: Generation) -> None:
        deadline = time.monotonic() + self._options.timeout_s
        while True:
            done, total = self._catalog.progress(generation)
            self._progress(done, total)
            if done >= total:
                self.outcome.documents = total
                return
            if time.monotonic() > deadline:
                raise ReindexFailed(
                    f"timed out with {done} of {total} documents reindexed; generation "
                    f"{generation.id} stays building: run the same command again to resume")
            time.sleep(self._options.poll_s)

    def _verify(self, generation: Generation) -> None:
        """Counts match and the smoke evaluation passes, else the generation fails."""
        counts = self._catalog.counts(generation)
        self.outcome.chunks = counts.chunks
        if not counts.complete:
            self._fail(generation, f"{counts.missing} of {counts.chunks} chunks have no vector "
                                   f"in generation {generation.id} ({counts.vectors} vectors)")
        rate = self._smoke(generation)
        self.outcome.smoke_hit_rate = rate
        if rate < self._options.smoke_min_hit_rate:
            self._fail(generation, f"smoke evaluation failed: {rate:.2f} of sampled chunks "
                                   f"found their own document in the top "
                                   f"{self._options.smoke_k}, below "
                                   f"{self._options.smoke_min_hit_rate:.2f}")

    def _smoke(self, generation: Generation) -> float:
        """Share of sampled chunks whose own text, as a query, finds their document."""
        sample = self._catalog.sample(self._options.smoke_sample, str(generation.id))
        if not sample:
            return 1.0  # an empty index: nothing can be wrong with it
        hits = 0
        for _, document_id, text in sample:
            vector = self._model.embed_query(text)
            hits += document_id in self._catalog.neighbours(generation, vector,
                                                            self._options.smoke_k)
        return hits / len(sample)

    def _fail(self, generation: Generation, reason: str) -> None:
        """Mark failed and drop its vectors; the active generation keeps serving."""
        with self._catalog.conn.transaction():
            set_state(self._catalog.conn, generation.id, "failed", reason[:500])
            drop_vectors(self._catalog.conn, generation)
        raise ReindexFailed(reason)

    def _switch(self, generation: Generation) -> None:
        """One transaction flips `active`; the old vectors go after queries drain."""
        conn = self._catalog.conn
        with conn.transaction():
            old = switch_active(conn, generation.id)
        self.outcome.switched = True
        logger.info("generation %s is active", generation.label)
        if old is None:
            return
        # Retrieval notices within RAGCHAT_GENERATION_POLL_S; a query that still
        # searches the old vectors meanwhile must find them.
        time.sleep(self._options.drain_s)
        with conn.transaction():
            retired = get_generation(conn, old.id)
            drop_vectors(conn, retired or old)
        logger.info("dropped the vectors of generation %s", old.label)


def summary(outcome: Outcome) -> dict[str, Any]:
    return {"generation": outcome.generation, "previous": outcome.previous,
            "switched": outcome.switched, "resumed": outcome.resumed,
            "documents": outcome.documents, "chunks": outcome.chunks,
            "smoke_hit_rate": round(outcome.smoke_hit_rate, 4),
            **{f"{k}_seconds": round(v, 1) for k, v in outcome.seconds.items()}}
