"""The document routes through the REST gateway and a real in-process ingest gRPC server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from psycopg_pool import ConnectionPool
from ragchat.ingest.v1 import ingest_pb2, ingest_pb2_grpc

from services.common.aws import s3_client, sqs_client
from services.common.embeddings import EmbeddingProvider
from services.common.grpc_server import start_server
from services.common.vectorstore.pgvector import PgVectorStore
from services.gateway.app import create_app
from services.gateway.clients import ServiceClients
from services.gateway.config import GatewaySettings
from services.ingest import servicer
from services.ingest.adapters import S3BlobStore, SqsJobQueue
from services.ingest.chunking import TokenChunker
from services.ingest.config import IngestSettings
from services.ingest.jobs import JobRepository
from services.ingest.pipeline import IndexingPipeline
from services.ingest.submission import Submissions
from services.ingest.worker import IndexWorker


class Api:
    def __init__(self, http: httpx.AsyncClient, stub: ingest_pb2_grpc.IngestServiceStub,
                 worker: IndexWorker, queue: SqsJobQueue) -> None:
        self.http, self.stub, self.worker, self.queue = http, stub, worker, queue

    async def upload(self, name: str, text: str, headers: dict[str, str] | None = None,
                     **form: str) -> httpx.Response:
        files = {"file": (name, text.encode(), "text/plain")}
        return await self.http.post("/upload", files=files, data=form, headers=headers or {})

    def index_all(self) -> None:
        while messages := self.queue.receive(10, 1):
            for message in messages:
                self.worker.process(message)


@pytest.fixture
async def api(clean_pool: ConnectionPool, embeddings: EmbeddingProvider,
              aws: dict[str, str]) -> AsyncIterator[Api]:
    settings = IngestSettings(**aws, chunk_tokens=40, chunk_overlap_tokens=8, sqs_wait_s=1)
    repo, store = JobRepository(clean_pool), PgVectorStore(clean_pool)
    blobs = S3BlobStore(s3_client(settings), settings.s3_bucket)
    queue = SqsJobQueue(sqs_client(settings), settings.sqs_queue_url)
    submissions = Submissions(repo, blobs, queue, store, settings.max_upload_bytes)
    pipeline = IndexingPipeline(embeddings, TokenChunker.for_embeddings(embeddings, 40, 8), store)
    running = await start_server("127.0.0.1:0", lambda s: servicer.register(s, submissions, repo))
    gateway = GatewaySettings(ingest_target=f"127.0.0.1:{running.port}")
    app = create_app(gateway)
    app.state.clients = ServiceClients.connect(gateway)  # the lifespan is not run here
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield Api(http, app.state.clients.ingest, IndexWorker(repo, blobs, queue, pipeline,
                                                               settings), queue)
    await app.state.clients.close()
    await running.stop(0)


async def test_idempotency_key_retries_return_the_first_response(api: Api) -> None:
    key = {"Idempotency-Key": "upload-7f3a"}
    first = await api.upload("leave.txt", "Staff get 25 days of leave.", key, tags="hr")
    retry = await api.upload("leave.txt", "Staff get 25 days of leave.", key, tags="hr")
    assert first.status_code == retry.status_code == 202
    assert retry.json() == first.json() and first.json()["version"] == 1
    listed = (await api.http.get("/documents")).json()["documents"]
    assert [d["document_id"] for d in listed] == [first.json()["document_id"]]
    clash = await api.upload("leave.txt", "Staff get 30 days of leave.", key, tags="hr")
    assert clash.status_code == 409
    assert clash.json()["error"] == "conflict" and "upload-7f3a" in clash.json()["detail"]
    assert clash.json()["reason"] == "REQUEST_ID_REUSED"


async def test_a_retried_delete_succeeds_once_the_document_is_gone(api: Api) -> None:
    first = (await api.upload("a.txt", "Alpha.")).json()["document_id"]
    second = (await api.upload("b.txt", "Beta.")).json()["document_id"]
    key = {"Idempotency-Key": "delete-a"}
    for _ in range(2):  # the retry is a 204 again, not a 404
        assert (await api.http.delete(f"/documents/{first}", headers=key)).status_code == 204
    gone = await api.http.delete(f"/documents/{first}")
    assert gone.status_code == 404
    assert (gone.json()["error"], gone.json()["reason"]) == ("not_found", "DOCUMENT_NOT_FOUND")
    reused = await api.http.delete(f"/documents/{second}", headers=key)
    assert reused.status_code == 409 and reused.json()["reason"] == "REQUEST_ID_REUSED"
    listed = (await api.http.get("/documents")).json()["documents"]
    assert [d["document_id"] for d in listed] == [second]


async def test_a_document_key_versions_the_document_in_place(api: Api) -> None:
    first = (await api.upload("leave.txt", "Staff get 25 days of leave.",
                              document_key="hr/leave")).json()
    api.index_all()
    second = (await api.upload("leave-2025.txt", "Staff get 30 days of leave.",
                               document_key="hr/leave")).json()
    same = (await api.upload("leave-2025.txt", "Staff get 30 days of leave.",
                             document_key="hr/leave")).json()
    assert second["document_id"] == first["document_id"] and second["version"] == 2
    assert same == second  # identical content: no new version, no new job
    api.index_all()
    doc = (await api.http.get(f"/documents/{first['document_id']}")).json()
    assert (doc["version"], doc["document_key"], doc["source"]) == (2, "hr/leave",
                                                                   "leave-2025.txt")
    assert doc["status"] == "indexed"
    assert [(v["version"], v["status"], v["source"]) for v in doc["versions"]] == [
        (2, "indexed", "leave-2025.txt"), (1, "indexed", "leave.txt")]
    assert all(len(v["sha256"]) == 64 and v["created_at"] for v in doc["versions"])
    job = (await api.http.get(f"/jobs/{second['job_id']}")).json()
    assert (job["status"], job["version"]) == ("indexed", 2)
    missing = await api.http.get("/documents/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


async def test_pages_stay_stable_while_uploads_arrive(api: Api) -> None:
    originals = [(await api.upload(f"d{i}.txt", f"document {i}")).json()["document_id"]
                 for i in range(5)]
    page = (await api.http.get("/documents", params={"page_size": 2})).json()
    seen = [d["document_id"] for d in page["documents"]]
    for i in range(3):  # new uploads land between pages
        await api.upload(f"late{i}.txt", f"late document {i}")
        token = page["next_page_token"]
        assert token
        page = (await api.http.get("/documents",
                                   params={"page_size": 2, "page_token": token})).json()
        seen += [d["document_id"] for d in page["documents"]]
        if not page["next_page_token"]:
            break
    assert seen == originals[::-1]  # newest first, each exactly once, no late upload
    assert page["next_page_token"] is None


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"page_token": "20"}, "page_token is not valid"),
        ({"page_token": "bm90IGpzb24"}, "page_token is not valid"),
        ({"page_size": 501}, "page_size"),
        ({"page_size": 0}, "page_size"),
    ],
)
async def test_bad_paging_is_a_clear_422(api: Api, params: dict[str, Any], detail: str) -> None:
    resp = await api.http.get("/documents", params=params)
    assert resp.status_code == 422 and detail in resp.json()["detail"]


async def test_grpc_refuses_oversized_pages(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.stub.ListDocuments(ingest_pb2.ListDocumentsRequest(page_size=501))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "between 1 and 500" in (err.value.details() or "")
