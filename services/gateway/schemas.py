"""REST request and response bodies (they shape the OpenAPI document at /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Header
from pydantic import BaseModel, Field, field_validator

JobStatus = Literal["queued", "processing", "indexed", "failed", "superseded"]


class UploadAccepted(BaseModel):
    job_id: str
    document_id: str
    version: int = Field(description="the document version this job indexes (1 = new)")


class JobView(BaseModel):
    job_id: str
    document_id: str
    status: JobStatus
    error: str | None = None
    chunk_count: int = 0
    attempts: int = 0
    version: int = 1


class DocumentView(BaseModel):
    document_id: str
    title: str
    source: str
    content_type: str
    size_bytes: int
    tags: list[str]
    created_at: datetime | None
    status: JobStatus = Field(description="state of the current version's indexing job")
    chunk_count: int
    version: int = Field(description="the current (latest uploaded) version")
    document_key: str | None = None


class DocumentPage(BaseModel):
    documents: list[DocumentView]
    next_page_token: str | None = Field(
        default=None, description="opaque; pass as page_token for the next page"
    )


class DocumentVersionView(BaseModel):
    version: int
    sha256: str
    size_bytes: int
    content_type: str
    source: str
    created_at: datetime | None
    status: JobStatus
    job_id: str
    chunk_count: int


class DocumentDetail(DocumentView):
    versions: list[DocumentVersionView] = Field(description="every version, newest first")


SearchMode = Literal["dense", "keyword", "hybrid"]


class SearchFilterBody(BaseModel):
    """Every set field must match; a filter matching no document yields no results."""

    sources: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list, description="documents carrying all of these")
    created_after: datetime | None = None
    created_before: datetime | None = None
    document_ids: list[str] = Field(default_factory=list)


class RetrievalOptions(BaseModel):
    """How context is retrieved; unset fields take the retrieval service's defaults."""

    top_k: int | None = Field(default=None, ge=1, le=100)
    mode: SearchMode | None = None
    min_score: float | None = Field(
        default=None,
        ge=-1.0,
        allow_inf_nan=False,
        description="minimum final score; its scale depends on score_kind",
    )
    rerank: bool | None = None
    filter: SearchFilterBody | None = None


def _stripped(value: str, what: str) -> str:
    if not value.strip():
        raise ValueError(f"{what} must not be empty")
    return value.strip()


class QueryRequest(RetrievalOptions):
    question: str = Field(min_length=1, max_length=4000)
    session_id: str | None = None

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return _stripped(value, "question")


class SearchRequestBody(RetrievalOptions):
    query: str = Field(min_length=1, max_length=4000)

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return _stripped(value, "query")


class SearchResults(BaseModel):
    mode: SearchMode
    reranker: str | None = None
    results: list[SearchHit]


class Citation(BaseModel):
    document_id: str
    chunk_id: str
    source: str
    title: str
    score: float
    score_kind: str = ""
    text: str
    page: int | None = Field(default=None, description="page (PDF) or slide (PPTX), from 1")
    heading: str = Field(default="", description='heading path, e.g. "Benefits > Leave"')


class SearchHit(Citation):
    ordinal: int


class QueryResponse(BaseModel):
    answer: str
    session_id: str
    citations: list[Citation]
    refused: bool = False


class SessionCreated(BaseModel):
    session_id: str


class TurnView(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class SessionView(BaseModel):
    session_id: str
    turns: list[TurnView]


class HealthView(BaseModel):
    status: Literal["ok", "degraded"]
    # Each backend service's overall gRPC health status (SERVING, NOT_SERVING, UNAVAILABLE...).
    services: dict[str, str]
    # Per service: the state of each dependency (postgres, s3, sqs) and background task.
    dependencies: dict[str, dict[str, str]] = {}
    # Per process: the registered serving configuration in use ("ragchat-rag/3"), or "env".
    config_versions: dict[str, str] = {}


class LiveView(BaseModel):
    status: Literal["ok"]


# The Idempotency-Key header of the mutating routes, passed on as the RPC's request_id.
IdempotencyKey = Annotated[str, Header(
    alias="Idempotency-Key",
    description="Retries with the same key return the first outcome; 409 if the "
    "request differs",
)]
