"""IngestService: maps protobuf requests onto submissions and the job repository."""

from __future__ import annotations

import asyncio

import grpc
from opentelemetry import trace
from ragchat.ingest.v1 import ingest_pb2, ingest_pb2_grpc

from services.common import paging as keyset
from services.common.errors import InvalidArgument
from services.common.idempotency import request_key
from services.common.protomap import timestamp
from services.common.telemetry import ATTR_DOCUMENT_ID, ATTR_JOB_ID
from services.ingest import paging
from services.ingest.jobs import DocumentRow, JobRepository, VersionRow
from services.ingest.submission import Submissions

STATUS_TO_PB = {
    "queued": ingest_pb2.JOB_STATUS_QUEUED,
    "processing": ingest_pb2.JOB_STATUS_PROCESSING,
    "indexed": ingest_pb2.JOB_STATUS_INDEXED,
    "failed": ingest_pb2.JOB_STATUS_FAILED,
    "superseded": ingest_pb2.JOB_STATUS_SUPERSEDED,
}


def _require(value: str, name: str) -> str:
    if not value.strip():
        raise InvalidArgument(f"{name} is required", field=name)
    return value


def _document_pb(row: DocumentRow) -> ingest_pb2.Document:
    return ingest_pb2.Document(
        document_id=row.meta.document_id,
        title=row.meta.title,
        source=row.meta.source,
        content_type=row.meta.content_type,
        size_bytes=row.size_bytes,
        tags=list(row.meta.tags),
        create_time=timestamp(row.meta.created_at),
        status=STATUS_TO_PB[row.status],
        chunk_count=row.chunk_count,
        version=row.meta.version,
        document_key=row.document_key,
    )


def _version_pb(row: VersionRow) -> ingest_pb2.DocumentVersion:
    return ingest_pb2.DocumentVersion(
        version=row.version,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        content_type=row.content_type,
        source=row.source,
        create_time=timestamp(row.created_at),
        status=STATUS_TO_PB[row.status],
        job_id=row.job_id,
        chunk_count=row.chunk_count,
    )


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self, submissions: Submissions, repo: JobRepository) -> None:
        self._submissions = submissions
        self._repo = repo

    async def SubmitDocument(
        self, request: ingest_pb2.SubmitDocumentRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.SubmitDocumentResponse:
        accepted = await asyncio.to_thread(
            self._submissions.accept,
            request.filename,
            request.content_type,
            request.content,
            list(request.tags),
            request.title,
            request.document_key,
            request.request_id,
        )
        span = trace.get_current_span()
        span.set_attribute(ATTR_JOB_ID, accepted.job_id)
        span.set_attribute(ATTR_DOCUMENT_ID, accepted.document_id)
        return ingest_pb2.SubmitDocumentResponse(
            job_id=accepted.job_id, document_id=accepted.document_id, version=accepted.version
        )

    async def GetJob(
        self, request: ingest_pb2.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.GetJobResponse:
        job = await asyncio.to_thread(self._repo.get, _require(request.job_id, "job_id"))
        return ingest_pb2.GetJobResponse(
            job_id=job.job_id,
            document_id=job.document_id,
            status=STATUS_TO_PB[job.status],
            error=job.error if job.status == "failed" else "",
            chunk_count=job.chunk_count,
            attempts=job.attempts,
            version=job.version,
        )

    async def ListDocuments(
        self, request: ingest_pb2.ListDocumentsRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.ListDocumentsResponse:
        rows, token = await asyncio.to_thread(
            keyset.fetch_page, self._repo.list_documents, request.page_size,
            request.page_token, paging.document_key,
        )
        return ingest_pb2.ListDocumentsResponse(
            documents=[_document_pb(r) for r in rows], next_page_token=token
        )

    async def GetDocument(
        self, request: ingest_pb2.GetDocumentRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.GetDocumentResponse:
        document_id = _require(request.document_id, "document_id")
        row = await asyncio.to_thread(self._repo.document, document_id)
        versions = await asyncio.to_thread(self._repo.versions, document_id)
        return ingest_pb2.GetDocumentResponse(
            document=_document_pb(row), versions=[_version_pb(v) for v in versions]
        )

    async def DeleteDocument(
        self, request: ingest_pb2.DeleteDocumentRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.DeleteDocumentResponse:
        document_id = _require(request.document_id, "document_id")
        trace.get_current_span().set_attribute(ATTR_DOCUMENT_ID, document_id)
        key = request_key("ingest.DeleteDocument", request)
        await asyncio.to_thread(self._submissions.delete, document_id, key)
        return ingest_pb2.DeleteDocumentResponse()


def register(server: grpc.aio.Server, submissions: Submissions, repo: JobRepository) -> list[str]:
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(IngestServicer(submissions, repo), server)
    return [ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name]
