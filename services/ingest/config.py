"""Settings of the ingest service (gRPC API + SQS worker)."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import AwsSettings, EmbeddingSettings

DEFAULT_PORT = 50053


class IngestSettings(EmbeddingSettings, AwsSettings):
    """RAGCHAT_* environment variables read by the ingest service."""

    max_upload_mb: float = 20.0
    chunk_tokens: int = Field(default=200, gt=16)
    chunk_overlap_tokens: int = Field(default=32, ge=0)
    # Texts per model call, shared by all jobs in flight; chunks a job embeds and
    # writes at a time (with one slice queued ahead, this bounds a job's memory).
    embed_batch_size: int = Field(default=32, ge=1)
    embed_slice_size: int = Field(default=256, ge=1)
    # Worker: concurrent jobs, SQS long-poll wait, and retry budget.
    worker_enabled: bool = True
    worker_concurrency: int = Field(default=4, ge=1)
    sqs_wait_s: int = Field(default=10, ge=0, le=20)
    visibility_timeout_s: int = Field(default=120, ge=10)
    max_attempts: int = Field(default=5, ge=1)
    # Jobs queued or processing for longer than this are re-queued (lost messages).
    stale_job_after_s: float = 900.0

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
