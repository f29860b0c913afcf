"""Settings of the REST gateway."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from services.common.settings import CommonSettings, DatabaseSettings

_DB_FIELDS = DatabaseSettings.model_fields


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
    # Answer routes (/query, /query/stream, /v1/chat/completions) ask retrieval for its
    # reranker when the request does not say: the passage cited first is then the one
    # that best matches the question. Turn off where retrieval has RAGCHAT_RERANKER=none.
    answer_rerank: bool = True
    # Generation capacity: answers generated at once, requests waiting for one, and the
    # Retry-After (s) sent with the 429 that refuses any beyond.
    max_concurrent_generations: int = Field(default=4, ge=1)
    generation_queue: int = Field(default=4, ge=0)
    overload_retry_after_s: int = Field(default=5, ge=1)
    # Authentication (README, "Authentication and tenants"). Production always requires it.
    auth_required: bool = False
    admin_token: SecretStr = SecretStr("")
    # Where api_keys / tenant_limits / tenant_storage live (only opened when auth is on or
    # an admin token is set); the same database and secret as the services.
    database_url: str = _DB_FIELDS["database_url"].default
    database_password: SecretStr = SecretStr("")
    # Per-tenant defaults (0 = unlimited); PUT /admin/tenants/{tenant}/limits overrides them.
    rate_limit_per_minute: int = Field(default=600, ge=0)
    uploads_per_hour: int = Field(default=120, ge=0)
    storage_quota_mb: float = Field(default=1024.0, ge=0)
    # memory: token buckets in each gateway (N gateways allow N times the rate);
    # postgres: fixed windows in the database, shared by every gateway.
    rate_limit_backend: Literal["memory", "postgres"] = "memory"
    # How long a verified key is trusted before it is looked up again (revocation through
    # another gateway takes effect within this; through this one at once).
    auth_cache_s: float = Field(default=10.0, ge=0)
    # Optional OIDC/JWT bearer tokens (e.g. Cognito) besides API keys: the issuer's JWKS,
    # its `iss`, the expected `aud` (empty: not checked) and the claim naming the tenant.
    jwt_jwks_url: str = ""
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_tenant_claim: str = "tenant"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def requires_auth(self) -> bool:
        """Whether every non-public request needs a key (always in production)."""
        return self.auth_required or self.is_production()

    def uses_key_store(self) -> bool:
        """Whether the gateway opens its database: keys are checked or can be made."""
        return self.requires_auth() or bool(self.admin_token.get_secret_value())

    def database_dsn(self) -> str:
        """The DSN of the gateway's tables, password merged in as the services do."""
        return DatabaseSettings(
            environment=self.environment,
            database_url=self.database_url,
            database_password=self.database_password,
        ).database_dsn()
