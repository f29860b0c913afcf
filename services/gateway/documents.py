"""Upload, job status and document routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    Header,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
)
from google.protobuf import timestamp_pb2
from pydantic import AfterValidator
from ragchat.ingest.v1 import ingest_pb2

from services.common.errors import RagchatError, TooLarge, Unsupported
from services.common.uploads import clean_filename, validate_upload
from services.gateway.auth import storage
from services.gateway.clients import ServiceClients
from services.gateway.config import GatewaySettings
from services.gateway.openapi import COMMON, errors, multipart_body
from services.gateway.schemas import (
    ID_PATTERN,
    IDEMPOTENCY_KEY_PATTERN,
    MAX_ID,
    NO_NUL,
    DocumentDetail,
    DocumentPage,
    DocumentVersionView,
    DocumentView,
    IdempotencyKey,
    JobView,
    UploadAccepted,
    no_nul,
)

router = APIRouter(tags=["documents"])
PathId = Annotated[str, Path(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]


def _form_text(max_length: int, description: str) -> Any:
    return Form(description=description, max_length=max_length,
                json_schema_extra={"pattern": NO_NUL})
_FILE_TYPES = "A .txt, .md, .html, .pdf, .docx, .pptx, .xlsx, .csv or .json file"

STATUS_NAMES = {
    ingest_pb2.JOB_STATUS_QUEUED: "queued",
    ingest_pb2.JOB_STATUS_PROCESSING: "processing",
    ingest_pb2.JOB_STATUS_INDEXED: "indexed",
    ingest_pb2.JOB_STATUS_FAILED: "failed",
    ingest_pb2.JOB_STATUS_SUPERSEDED: "superseded",
}
MAX_PAGE_SIZE = 500


class UploadRejected(Exception):
    """A bad upload, turned into a 4xx JSON response by the app."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


async def _read_limited(file: UploadFile, limit: int) -> bytes:
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise UploadRejected(413, "too_large", f"file exceeds the {limit}-byte upload limit")
    return data


def _filename(file: UploadFile) -> str:
    """The upload's name, cleaned (see clean_filename); NUL or nothing usable is a 422."""
    raw = file.filename or ""
    if "\x00" in raw:
        raise UploadRejected(422, "invalid_request",
                             "file.filename: must not contain NUL characters")
    name = clean_filename(raw)
    if raw and not name:
        raise UploadRejected(422, "invalid_request",
                             "file.filename: has no usable characters")
    return name


@router.post(
    "/upload", status_code=202, response_model=UploadAccepted,
    dependencies=[Depends(multipart_body)], responses=errors(*COMMON, 400, 409, 413, 415, 422),
)
async def upload(
    request: Request,
    file: Annotated[UploadFile, File(description=_FILE_TYPES)],
    tags: Annotated[str, AfterValidator(no_nul), _form_text(2000, "Comma-separated tags")] = "",
    title: Annotated[str, AfterValidator(no_nul), _form_text(
        500, "Optional title; defaults to the file name")] = "",
    document_key: Annotated[str, AfterValidator(no_nul), _form_text(
        500, "Stable key: re-uploading it replaces the document as a new version")] = "",
    idempotency_key: Annotated[str, Header(
        alias="Idempotency-Key",
        max_length=200,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Retries with the same key return the first response; 409 if the "
        "upload differs",
    )] = "",
) -> UploadAccepted:
    """Store the file in S3 and queue it for indexing; poll /jobs/{job_id} for progress.

    The file name is cleaned before it becomes the title, source and S3 key: only its
    last path component, without control characters or ANSI escapes, at most 200
    characters."""
    clients: ServiceClients = request.app.state.clients
    settings: GatewaySettings = request.app.state.settings
    filename = _filename(file)
    content_type = file.content_type or ""
    data = await _read_limited(file, settings.max_upload_bytes)
    try:
        validate_upload(filename, content_type, len(data), settings.max_upload_bytes, data)
    except TooLarge as exc:
        raise UploadRejected(413, "too_large", str(exc)) from exc
    except Unsupported as exc:
        raise UploadRejected(415, "unsupported_type", str(exc)) from exc
    except RagchatError as exc:
        raise UploadRejected(422, "invalid_file", str(exc)) from exc
    await storage.admit(request, len(data), idempotency_key)
    accepted = await clients.ingest.SubmitDocument(
        ingest_pb2.SubmitDocumentRequest(
            filename=filename,
            content_type=content_type,
            content=data,
            tags=[t for t in tags.split(",") if t.strip()],
            title=title,
            document_key=document_key,
            request_id=idempotency_key,
        ),
        timeout=settings.upload_deadline_s,
    )
    await storage.record(
        request, accepted.document_id, accepted.version, len(data), idempotency_key)
    return UploadAccepted(
        job_id=accepted.job_id, document_id=accepted.document_id, version=accepted.version
    )


@router.get("/jobs/{job_id}", response_model=JobView, response_model_exclude_none=True,
            responses=errors(*COMMON, 404, 422))
async def get_job(job_id: PathId, request: Request) -> JobView:
    """The state of an indexing job: queued, processing, indexed or failed."""
    clients: ServiceClients = request.app.state.clients
    job = await clients.ingest.GetJob(
        ingest_pb2.GetJobRequest(job_id=job_id), timeout=request.app.state.settings.deadline_s
    )
    status = STATUS_NAMES[job.status]
    return JobView(
        job_id=job.job_id,
        document_id=job.document_id,
        status=status,  # type: ignore[arg-type]
        error=job.error if status in ("failed", "superseded") else None,
        chunk_count=job.chunk_count,
        attempts=job.attempts,
        version=job.version,
    )


@router.get("/documents", response_model=DocumentPage, responses=errors(*COMMON, 422))
async def list_documents(
    request: Request,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
    page_token: Annotated[str, Query(
        max_length=1024, pattern="^[A-Za-z0-9_-]*$",
        description="a previous page's next_page_token (422 for any other value)",
    )] = "",
) -> DocumentPage:
    """Documents, newest first, with the state of their current version's indexing job.

    Pages are keyset pages: uploads arriving between calls never shift them.
    """
    clients: ServiceClients = request.app.state.clients
    page = await clients.ingest.ListDocuments(
        ingest_pb2.ListDocumentsRequest(page_size=page_size, page_token=page_token),
        timeout=request.app.state.settings.deadline_s,
    )
    docs = [DocumentView(**_document_fields(d)) for d in page.documents]
    return DocumentPage(documents=docs, next_page_token=page.next_page_token or None)


@router.get("/documents/{document_id}", response_model=DocumentDetail,
            responses=errors(*COMMON, 404, 422))
async def get_document(document_id: PathId, request: Request) -> DocumentDetail:
    """A document, its current version and the history of every version."""
    clients: ServiceClients = request.app.state.clients
    found = await clients.ingest.GetDocument(
        ingest_pb2.GetDocumentRequest(document_id=document_id),
        timeout=request.app.state.settings.deadline_s,
    )
    versions = [
        DocumentVersionView(
            version=v.version,
            sha256=v.sha256,
            size_bytes=v.size_bytes,
            content_type=v.content_type,
            source=v.source,
            created_at=_time(v.create_time) if v.HasField("create_time") else None,
            status=STATUS_NAMES[v.status],  # type: ignore[arg-type]
            job_id=v.job_id,
            chunk_count=v.chunk_count,
        )
        for v in found.versions
    ]
    return DocumentDetail(**_document_fields(found.document), versions=versions)


def _time(stamp: timestamp_pb2.Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def _document_fields(d: ingest_pb2.Document) -> dict[str, Any]:
    return {
        "document_id": d.document_id,
        "title": d.title,
        "source": d.source,
        "content_type": d.content_type,
        "size_bytes": d.size_bytes,
        "tags": list(d.tags),
        "created_at": _time(d.create_time) if d.HasField("create_time") else None,
        "status": STATUS_NAMES[d.status],
        "chunk_count": d.chunk_count,
        "version": d.version,
        "document_key": d.document_key or None,
    }


@router.delete("/documents/{document_id}", status_code=204,
               responses=errors(*COMMON, 404, 409, 422))
async def delete_document(
    document_id: PathId, request: Request, idempotency_key: IdempotencyKey = ""
) -> Response:
    """Delete a document everywhere: chunks, jobs, versions and every raw file.

    A retry with the same Idempotency-Key succeeds again instead of a 404."""
    clients: ServiceClients = request.app.state.clients
    await clients.ingest.DeleteDocument(
        ingest_pb2.DeleteDocumentRequest(document_id=document_id, request_id=idempotency_key),
        timeout=request.app.state.settings.deadline_s,
    )
    await storage.forget(request, document_id)
    return Response(status_code=204)
