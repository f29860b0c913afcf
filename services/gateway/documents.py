"""Upload, job status and document routes."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from ragchat.ingest.v1 import ingest_pb2

from services.common.errors import RagchatError, TooLarge, Unsupported
from services.common.uploads import validate_upload
from services.gateway.clients import ServiceClients
from services.gateway.config import GatewaySettings
from services.gateway.schemas import DocumentPage, DocumentView, JobView, UploadAccepted

router = APIRouter(tags=["documents"])

STATUS_NAMES = {
    ingest_pb2.JOB_STATUS_QUEUED: "queued",
    ingest_pb2.JOB_STATUS_PROCESSING: "processing",
    ingest_pb2.JOB_STATUS_INDEXED: "indexed",
    ingest_pb2.JOB_STATUS_FAILED: "failed",
}


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


@router.post("/upload", status_code=202, response_model=UploadAccepted)
async def upload(
    request: Request,
    file: Annotated[UploadFile, File(description="A .txt, .md, .html or .pdf file")],
    tags: Annotated[str, Form(description="Comma-separated tags")] = "",
    title: Annotated[str, Form(description="Optional title; defaults to the file name")] = "",
) -> UploadAccepted:
    """Store the file in S3 and queue it for indexing; poll /jobs/{job_id} for progress."""
    clients: ServiceClients = request.app.state.clients
    settings: GatewaySettings = request.app.state.settings
    filename = file.filename or ""
    content_type = file.content_type or ""
    data = await _read_limited(file, settings.max_upload_bytes)
    try:
        validate_upload(filename, content_type, len(data), settings.max_upload_bytes)
    except TooLarge as exc:
        raise UploadRejected(413, "too_large", str(exc)) from exc
    except Unsupported as exc:
        raise UploadRejected(415, "unsupported_type", str(exc)) from exc
    except RagchatError as exc:
        raise UploadRejected(422, "invalid_file", str(exc)) from exc
    accepted = await clients.ingest.SubmitDocument(
        ingest_pb2.SubmitDocumentRequest(
            filename=filename,
            content_type=content_type,
            content=data,
            tags=[t for t in tags.split(",") if t.strip()],
            title=title,
        ),
        timeout=settings.upload_deadline_s,
    )
    return UploadAccepted(job_id=accepted.job_id, document_id=accepted.document_id)


@router.get("/jobs/{job_id}", response_model=JobView, response_model_exclude_none=True)
async def get_job(job_id: str, request: Request) -> JobView:
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
        error=job.error if status == "failed" else None,
        chunk_count=job.chunk_count,
        attempts=job.attempts,
    )


@router.get("/documents", response_model=DocumentPage)
async def list_documents(
    request: Request, page_size: int = 100, page_token: str = ""
) -> DocumentPage:
    """Documents, newest first, with the state of their latest indexing job."""
    clients: ServiceClients = request.app.state.clients
    page = await clients.ingest.ListDocuments(
        ingest_pb2.ListDocumentsRequest(page_size=page_size, page_token=page_token),
        timeout=request.app.state.settings.deadline_s,
    )
    docs = [
        DocumentView(
            document_id=d.document_id,
            title=d.title,
            source=d.source,
            content_type=d.content_type,
            size_bytes=d.size_bytes,
            tags=list(d.tags),
            created_at=d.create_time.ToDatetime(tzinfo=UTC) if d.HasField("create_time") else None,
            status=STATUS_NAMES[d.status],  # type: ignore[arg-type]
            chunk_count=d.chunk_count,
        )
        for d in page.documents
    ]
    return DocumentPage(documents=docs, next_page_token=page.next_page_token or None)


@router.delete("/documents/{document_id}", status_code=204)
async def delete_document(document_id: str, request: Request) -> Response:
    """Delete a document, its chunks and its raw file."""
    clients: ServiceClients = request.app.state.clients
    await clients.ingest.DeleteDocument(
        ingest_pb2.DeleteDocumentRequest(document_id=document_id),
        timeout=request.app.state.settings.deadline_s,
    )
    return Response(status_code=204)
