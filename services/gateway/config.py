"""Settings of the REST gateway."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import CommonSettings


class GatewaySettings(CommonSettings):
    """RAGCHAT_* environment variables read by the gateway."""

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    retrieval_target: str = "127.0.0.1:50051"
    generation_target: str = "127.0.0.1:50052"
    ingest_target: str = "127.0.0.1:50053"
    memory_target: str = "127.0.0.1:50054"
    # The ingest worker's health endpoint; empty when the worker runs inside the
    # ingest service (RAGCHAT_WORKER_ENABLED there) rather than as its own process.
    ingest_worker_target: str = "127.0.0.1:50055"
    max_upload_mb: float = 20.0
    # Per-call deadlines, in seconds.
    deadline_s: float = 10.0
    generate_deadline_s: float = 120.0
    upload_deadline_s: float = 60.0
    default_top_k: int = Field(default=5, ge=1, le=100)
    history_turns: int = Field(default=6, ge=0)
    # Generation capacity: answers generated at once, requests waiting for one, and the
    # Retry-After (s) sent with the 429 that refuses any beyond.
    max_concurrent_generations: int = Field(default=4, ge=1)
    generation_queue: int = Field(default=4, ge=0)
    overload_retry_after_s: int = Field(default=5, ge=1)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
