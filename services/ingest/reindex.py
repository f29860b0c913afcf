"""Reindex messages: embed an existing document's current chunks into a new generation.

`mlops.reindex` sends one message per document, `{"task": "reindex", "generation": N,
"document_id": …, "tenant": …}`, through the jobs queue. The worker adds the vectors
the generation lacks for the document's current chunks, with the generation's own
model. It is idempotent: only missing vectors are embedded and written (ON CONFLICT
DO NOTHING), so a redelivery after a crash writes nothing twice, and a message acked
only after its vectors commit loses nothing.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from typing import Any

from psycopg import sql
from psycopg_pool import ConnectionPool

from services.common.errors import InvalidArgument
from services.common.generation_models import GenerationModels
from services.common.generations import Generation, get_generation, vector_table
from services.common.tenancy import tenant_scope
from services.common.vectorstore.pg_generations import write_vectors
from services.ingest.adapters import JobQueue, QueueMessage
from services.ingest.submission import message_tenant

logger = logging.getLogger(__name__)

TASK = "reindex"
_ROUNDS = 5  # a document re-uploaded this often while it is reindexed is retried later

# Under the document's row lock: an upload that committed chunks without this
# generation's vectors (it began before the generation existed) has finished.
_MISSING = """
SELECT c.chunk_id, c.text FROM chunks c
WHERE c.document_id = %s AND NOT EXISTS (SELECT 1 FROM {table} v WHERE v.chunk_id = c.chunk_id)
ORDER BY c.ordinal
"""


def reindex_message(generation_id: int, document_id: str, tenant: str) -> dict[str, str]:
    return {"task": TASK, "generation": str(generation_id), "document_id": document_id,
            "tenant": tenant}


class Reindexer:
    """Fills a building generation one document at a time (as the caller's tenant)."""

    def __init__(self, pool: ConnectionPool, models: GenerationModels,
                 slice_size: int = 256) -> None:
        self._pool = pool
        self._models = models
        self._slice = max(1, slice_size)

    def reindex_document(self, generation_id: int, document_id: str) -> int:
        """Write the vectors the generation lacks for the document; returns how many.

        A generation that is no longer being built (switched, failed, gone) or a
        deleted document needs nothing: 0.
        """
        with self._pool.connection() as conn:
            generation = get_generation(conn, generation_id)
        if generation is None or generation.state not in ("building", "ready"):
            logger.info("reindex of %s into generation %s: nothing to do (%s)", document_id,
                        generation_id, generation.state if generation else "gone")
            return 0
        if generation.in_chunks:
            raise ValueError("generation 1 lives in chunks and is never rebuilt")
        model = self._models.for_generation(generation)
        written = 0
        for _ in range(_ROUNDS):
            missing = self._missing(generation, document_id)
            if not missing:
                return written
            for start in range(0, len(missing), self._slice):
                part = missing[start:start + self._slice]
                vectors = model.embed_documents([text for _, text in part])
                written += self._write(generation, document_id, [i for i, _ in part], vectors)
        raise RuntimeError(f"document {document_id} kept changing while it was reindexed")

    def _missing(self, generation: Generation, document_id: str) -> list[tuple[str, str]]:
        with self._pool.connection() as conn:
            if not _lock(conn, document_id):
                return []
            statement = sql.SQL(_MISSING).format(table=vector_table(generation))
            return [(r[0], r[1]) for r in conn.execute(statement, (document_id,))]

    def _write(self, generation: Generation, document_id: str, chunk_ids: list[str],
               vectors: Any) -> int:
        with self._pool.connection() as conn:
            if not _lock(conn, document_id):
                return 0
            with conn.cursor() as cur:
                return write_vectors(cur, generation, chunk_ids, vectors)


def _lock(conn: Any, document_id: str) -> bool:
    """Share-lock the document row (waiting for a replace in flight); False if it is gone."""
    row = conn.execute("SELECT 1 FROM documents WHERE document_id = %s FOR SHARE",
                       (document_id,)).fetchone()
    return row is not None


def handle_reindex(
    message: QueueMessage, reindexer: Reindexer | None, queue: JobQueue, max_attempts: int,
    heartbeat: AbstractContextManager[Any], retry_soon_s: int,
) -> None:
    """Settle one reindex message: acked once its vectors are committed (or when it can
    never succeed); otherwise it comes back soon, up to `max_attempts` deliveries."""
    body = message.body
    try:
        tenant = message_tenant(body)
        generation_id, document_id = int(str(body["generation"])), str(body["document_id"])
    except (InvalidArgument, KeyError, ValueError):
        logger.error("dropping a malformed reindex message")
        queue.ack(message)
        return
    if reindexer is None:
        logger.error("dropping a reindex message: this worker has no PostgreSQL store")
        queue.ack(message)
        return
    with tenant_scope(tenant), heartbeat:
        try:
            written = reindexer.reindex_document(generation_id, document_id)
        except Exception as exc:  # noqa: BLE001 - retried; the reindex's check sees the rest
            if message.receive_count >= max_attempts:
                logger.error("reindex of %s into generation %s gave up after %d attempts: %s",
                             document_id, generation_id, message.receive_count, exc)
                queue.ack(message)
                return
            logger.warning("reindex of %s into generation %s failed (%s); retrying",
                           document_id, generation_id, type(exc).__name__, exc_info=True)
            queue.extend(message, retry_soon_s)
            return
    queue.ack(message)
    logger.info("reindexed %s into generation %s: %d vectors", document_id, generation_id,
                written)
