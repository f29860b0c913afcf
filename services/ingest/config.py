"""Settings of the ingest service (gRPC API + SQS worker)."""

from __future__ import annotations

import sys

from pydantic import Field

from services.common.settings import AwsSettings, EmbeddingSettings
from services.ingest.parsers.base import ParseLimits

DEFAULT_PORT = 50053
WORKER_PORT = 50055  # `python -m services.ingest.worker`: gRPC health only


class IngestSettings(EmbeddingSettings, AwsSettings):
    """RAGCHAT_* environment variables read by the ingest service."""

    max_upload_mb: float = 20.0
    chunk_tokens: int = Field(default=200, gt=16)
    chunk_overlap_tokens: int = Field(default=32, ge=0)
    # Texts per model call, shared by all jobs in flight; chunks a job embeds and
    # writes at a time (with one slice queued ahead, this bounds a job's memory).
    embed_batch_size: int = Field(default=32, ge=1)
    embed_slice_size: int = Field(default=256, ge=1)
    # How often Python hands the GIL between threads, in ms (0: Python's 5 ms). The
    # job threads (chunking, COPY) and the model thread share it; see the README.
    gil_switch_interval_ms: float = Field(default=0.0, ge=0.0)

    def apply_switch_interval(self) -> None:
        if self.gil_switch_interval_ms:
            sys.setswitchinterval(self.gil_switch_interval_ms / 1000)
    # Worker: concurrent jobs, SQS long-poll wait, and retry budget.
    worker_enabled: bool = True
    worker_concurrency: int = Field(default=4, ge=1)
    sqs_wait_s: int = Field(default=10, ge=0, le=20)
    visibility_timeout_s: int = Field(default=120, ge=10)
    max_attempts: int = Field(default=5, ge=1)
    # Jobs queued or processing, untouched for this long, are re-queued (lost messages);
    # the worker's heartbeat keeps a running job's row fresh.
    stale_job_after_s: float = Field(default=900.0, gt=0)
    # Parse limits: a document past one fails its job with a reason naming the setting.
    max_pages: int = Field(default=2000, ge=1)  # PDF pages, PPTX slides
    max_decompressed_mb: float = Field(default=200.0, gt=0)  # DOCX/PPTX/XLSX unzipped
    parse_timeout_s: float = Field(default=120.0, gt=0)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def parse_limits(self) -> ParseLimits:
        return ParseLimits(
            max_pages=self.max_pages,
            max_decompressed_bytes=int(self.max_decompressed_mb * 1024 * 1024),
            timeout_s=self.parse_timeout_s,
        )
