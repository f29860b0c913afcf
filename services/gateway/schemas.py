"""REST request and response bodies (they shape the OpenAPI document at /docs)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Header
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

# Text may hold anything but NUL (PostgreSQL text cannot store it); the pattern puts
# that in the OpenAPI document, the validator says it in words.
NO_NUL = "^[^\\x00]*$"
# At least one character that is neither whitespace nor NUL.
NOT_BLANK = "^[^\\x00]*[^\\s\\x00][^\\x00]*$"
MAX_ID = 128
MAX_TEXT = 4000
MAX_FILTER_VALUES = 100


def no_nul(value: str) -> str:
    """Refuse NUL characters (422 naming the field)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _not_blank(value: str) -> str:
    no_nul(value)
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _text(max_length: int, description: str | None = None) -> object:
    return Field(max_length=max_length, description=description,
                 json_schema_extra={"pattern": NO_NUL})


SafeText = Annotated[str, AfterValidator(no_nul)]
# An id (document, chunk, session, job): letters, digits, "_", ":" and "-".
ID_PATTERN = "^[A-Za-z0-9_:-]+$"
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]
Tag = Annotated[SafeText, _text(256)]


def _rfc3339(value: object) -> object:
    if not isinstance(value, str | datetime):
        raise ValueError("must be an RFC 3339 date-time string, e.g. 2024-01-31T00:00:00Z")
    return value


def _in_utc_range(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be between 0001-01-01 and 9999-12-31 in UTC") from None


def _json_integer(value: object) -> object:
    """JSON's integers: 5 and 5.0, never "5" or true (the models are strict otherwise)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("must be an integer")
    return value


# Use as Annotated[int, Field(ge=..., le=..., strict=False), JSON_INT]: the bounds must
# come before the validator to reach the OpenAPI document.
JSON_INT = BeforeValidator(_json_integer)
TopK = Annotated[int, Field(ge=1, le=100, strict=False), JSON_INT]

# RFC 3339 with an offset, as the schema's format says: no epoch numbers, no naive times.
Moment = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_in_utc_range),
                   Field(strict=False)]

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
    """Every set field must match; a filter matching no document yields no results.
    Unknown fields are refused (a misspelt filter must never mean "no filter")."""

    model_config = ConfigDict(extra="forbid", strict=True)
    sources: list[Tag] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_FILTER_VALUES,
                            description="documents carrying all of these")
    created_after: Moment | None = None
    created_before: Moment | None = None
    document_ids: list[Id] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)


class RetrievalOptions(BaseModel):
    """How context is retrieved; unset fields take the retrieval service's defaults.
    Strict: `"rerank": 0` or `"top_k": "5"` is a 422, not a guess."""

    model_config = ConfigDict(extra="forbid", strict=True)
    top_k: TopK | None = None
    mode: SearchMode | None = None
    min_score: float | None = Field(
        default=None,
        ge=-1.0,
        le=1_000_000.0,
        allow_inf_nan=False,
        description="minimum final score; its scale depends on score_kind",
    )
    rerank: bool | None = None
    filter: SearchFilterBody | None = None


Question = Annotated[str, Field(
    min_length=1, max_length=MAX_TEXT, json_schema_extra={"pattern": NOT_BLANK}
), AfterValidator(_not_blank)]


class QueryRequest(RetrievalOptions):
    question: Question
    session_id: Id | None = None


class SearchRequestBody(RetrievalOptions):
    query: Question


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
    # Per service that searches: the index generation in use, {"id", "embedding_model"}.
    index_generations: dict[str, dict[str, object]] = {}


class LiveView(BaseModel):
    status: Literal["ok"]


# The Idempotency-Key header of the mutating routes, passed on as the RPC's request_id.
IDEMPOTENCY_KEY_PATTERN = "^[ -~]*$"  # printable ASCII, at most 200 characters
IdempotencyKey = Annotated[str, Header(
    alias="Idempotency-Key",
    max_length=200,
    pattern=IDEMPOTENCY_KEY_PATTERN,
    description="Retries with the same key return the first outcome; 409 if the "
    "request differs",
)]
