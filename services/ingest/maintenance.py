"""Background upkeep of the ingest queue: lost messages and dead letters.

Both span tenants: the sweep lists every tenant's jobs (as the maintenance role) and
re-sends each as its tenant; a dead letter names its tenant.

- The stale-job sweep re-sends jobs whose message was lost (running jobs are kept
  fresh by the worker's heartbeat, so they are never re-sent while they run).
- The dead-letter consumer marks jobs whose message SQS dead-lettered as `failed`
  with the reason, then deletes the dead letter; `python -m services.ingest.redrive`
  queues failed jobs again.
"""

from __future__ import annotations

import asyncio
import logging

from services.common.runner import pause
from services.common.tenancy import tenant_scope
from services.ingest.adapters import JobQueue, QueueMessage
from services.ingest.jobs import JobRepository
from services.ingest.submission import Submissions, message_tenant

logger = logging.getLogger(__name__)


async def requeue_stale(
    repo: JobRepository, submissions: Submissions, after_s: float, stop: asyncio.Event
) -> None:
    """Re-send jobs whose queue message was lost, so no upload silently stalls."""
    while not stop.is_set():
        try:
            for job in await asyncio.to_thread(repo.stale_jobs, after_s):
                logger.warning("re-queueing stale job %s (%s)", job.job_id, job.status)
                with tenant_scope(job.tenant_id):
                    await asyncio.to_thread(submissions.requeue, job.job_id)
        except Exception:  # noqa: BLE001 - the sweep is retried on the next tick
            logger.warning("stale-job sweep failed", exc_info=True)
        await pause(stop, max(after_s / 4, 5))


async def consume_dead_letters(
    repo: JobRepository, dlq: JobQueue, wait_s: int, stop: asyncio.Event
) -> None:
    """Mark the jobs of dead-lettered messages failed; then delete the dead letters."""
    while not stop.is_set():
        try:
            messages = await asyncio.to_thread(dlq.receive, 10, wait_s)
            for message in messages:
                await asyncio.to_thread(settle_dead_letter, repo, dlq, message)
        except Exception:  # noqa: BLE001 - retried on the next tick
            logger.warning("dead-letter sweep failed", exc_info=True)
            await pause(stop, 5)


def settle_dead_letter(repo: JobRepository, dlq: JobQueue, message: QueueMessage) -> None:
    """Fail the dead-lettered job (unless it already ended), then drop the dead letter."""
    job_id = str(message.body.get("job_id", ""))
    with tenant_scope(message_tenant(message.body)):
        settled = job_id and repo.fail_unless_settled(
            job_id,
            "dead-lettered: every delivery ended without a result (the worker crashed, ran "
            "out of memory or was stopped); fix the cause, then redrive it",
        )
    if settled:
        logger.error("job %s was dead-lettered; marked failed", job_id)
    dlq.ack(message)
