"""python -m services.ingest.redrive: queue failed (e.g. dead-lettered) jobs again.

    python -m services.ingest.redrive --list
    python -m services.ingest.redrive JOB_ID [JOB_ID ...]
    python -m services.ingest.redrive --all-failed
"""

from __future__ import annotations

import argparse
import sys

from services.common.aws import s3_client, sqs_client
from services.common.components import vector_store_from
from services.common.db import open_pool_from
from services.common.logging import setup_logging
from services.common.tenancy import DEFAULT_TENANT, tenant_scope
from services.ingest.adapters import S3BlobStore, SqsJobQueue
from services.ingest.config import IngestSettings
from services.ingest.jobs import JobRepository
from services.ingest.submission import Submissions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Queue failed ingest jobs again.")
    parser.add_argument("job_ids", nargs="*", help="failed jobs to redrive")
    parser.add_argument("--all-failed", action="store_true", help="redrive every failed job")
    parser.add_argument("--list", action="store_true", help="only list failed jobs")
    args = parser.parse_args(argv)
    settings = IngestSettings()
    setup_logging("redrive", settings.log_level, settings.log_format)
    pool = open_pool_from(settings, max_size=2)
    try:
        repo = JobRepository(pool)
        failed = repo.failed_jobs()
        if args.list or not (args.job_ids or args.all_failed):
            for job in failed:
                print(f"{job.job_id}\t{job.document_id}\t{job.updated_at:%Y-%m-%d %H:%M}\t"
                      f"{job.error}")
            return 0
        tenants = {j.job_id: j.tenant_id for j in failed}
        ids = [j.job_id for j in failed] if args.all_failed else args.job_ids
        submissions = Submissions(
            repo,
            S3BlobStore(s3_client(settings), settings.s3_bucket),
            SqsJobQueue(sqs_client(settings), settings.sqs_queue_url),
            vector_store_from(settings, pool),
            settings.max_upload_bytes,
        )
        return _redrive(repo, submissions, ids, tenants)
    finally:
        pool.close()


def _redrive(
    repo: JobRepository, submissions: Submissions, job_ids: list[str], tenants: dict[str, str]
) -> int:
    missing = 0
    for job_id in job_ids:
        # Each job is requeued as its own tenant; one that is not failed has none here.
        with tenant_scope(tenants.get(job_id, DEFAULT_TENANT)):
            redriven = job_id in tenants and repo.reset_failed(job_id)
            if redriven:
                submissions.requeue(job_id)
        if redriven:
            print(f"requeued {job_id}")
        else:
            print(f"skipped {job_id}: no failed job with that id", file=sys.stderr)
            missing += 1
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
