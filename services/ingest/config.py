"""Settings of the ingest service (gRPC API + SQS worker)."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import AwsSettings, EmbeddingSettings

DEFAULT_PORT = 50053
WORKER_PORT = 50055  # `python -m services.ingest.worker`: gRPC health only


class IngestSettings(EmbeddingSettings, AwsSettings):
    """RAGCHAT_* environment variables read by the ingest service."""

    max_upload_mb: float = 20.0
    chunk_tokens: int = Field(default=200, gt=16)
    chunk_overlap_tokens: int = Field(default=32, ge=0)
    # Worker: concurrent jobs, SQS long-poll wait, and retry budget.
    worker_enabled: bool = True
    worker_concurrency: int = Field(default=1, ge=1)
    sqs_wait_s: int = Field(default=10, ge=0, le=20)
    visibility_timeout_s: int = Field(default=120, ge=10)
    max_attempts: int = Field(default=5, ge=1)
    # Jobs queued or processing, untouched for this long, are re-queued (lost messages);
    # the worker's heartbeat keeps a running job's row fresh.
    stale_job_after_s: float = Field(default=900.0, gt=0)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
