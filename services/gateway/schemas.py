"""REST request and response bodies (they shape the OpenAPI document at /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

JobStatus = Literal["queued", "processing", "indexed", "failed"]


class UploadAccepted(BaseModel):
    job_id: str
    document_id: str


class JobView(BaseModel):
    job_id: str
    document_id: str
    status: JobStatus
    error: str | None = None
    chunk_count: int = 0
    attempts: int = 0


class DocumentView(BaseModel):
    document_id: str
    title: str
    source: str
    content_type: str
    size_bytes: int
    tags: list[str]
    created_at: datetime | None
    status: JobStatus
    chunk_count: int


class DocumentPage(BaseModel):
    documents: list[DocumentView]
    next_page_token: str | None = None


class QueryRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    session_id: str | None = None
    top_k: int | None = Field(default=None, ge=1, le=100)
    min_score: float | None = Field(default=None, gt=-1.0, le=1.0)

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("question must not be empty")
        return value.strip()


class Citation(BaseModel):
    document_id: str
    chunk_id: str
    source: str
    title: str
    score: float
    text: str


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
    services: dict[str, str]
