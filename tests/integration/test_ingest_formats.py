"""Office documents through the real worker: citations know their place; limits fail jobs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg_pool import ConnectionPool

from services.common.embeddings import EmbeddingProvider
from services.common.vectorstore.pgvector import PgVectorStore
from services.ingest.chunking import TokenChunker
from services.ingest.parsing import ParseLimits
from services.ingest.pipeline import IndexingPipeline
from services.ingest.worker import IndexWorker
from tests.integration.test_ingest_worker import Harness
from tests.unit.ingest.documents import docx_bytes, pdf_bytes, pptx_bytes, with_member

LIMITS = ParseLimits(max_pages=3, max_decompressed_bytes=4 * 1024 * 1024, timeout_s=60)


@pytest.fixture
def harness(clean_pool: ConnectionPool, embeddings: EmbeddingProvider,
            aws: dict[str, str]) -> Iterator[Harness]:
    harness = Harness(clean_pool, embeddings, aws, PgVectorStore(clean_pool))
    pipeline = IndexingPipeline(embeddings, TokenChunker.for_embeddings(embeddings, 128, 16),
                                harness.store, limits=LIMITS)
    harness.worker = IndexWorker(harness.repo, harness.blobs, harness.queue, pipeline,
                                 harness.settings)
    yield harness


def _index(harness: Harness, name: str, data: bytes) -> tuple[str, str]:
    job_id, doc_id = harness.submissions.submit(name, "", data)
    harness.worker.process(harness.receive())
    return job_id, doc_id


def test_a_docx_is_searchable_with_heading_paths_and_whole_tables(harness: Harness) -> None:
    job_id, doc_id = _index(harness, "handbook.docx", docx_bytes())
    assert harness.repo.get(job_id).status == "indexed"
    hits = harness.store.keyword_search("annual sick days", 3)
    assert hits[0].document_id == doc_id and hits[0].heading == "Benefits > Leave"
    assert "| Annual | 25 |\n| Sick | 10 |" in hits[0].text and hits[0].page is None
    pay = harness.store.keyword_search("salaries monthly", 1)[0]
    assert pay.heading == "Pay"


def test_slides_and_pdf_pages_are_cited_by_number(harness: Harness) -> None:
    _index(harness, "deck.pptx", pptx_bytes())
    _index(harness, "report.pdf", pdf_bytes(["Intro page.", "Glaciers retreat fast.", "End."]))
    slide = harness.store.keyword_search("revenue quarter", 1)[0]
    assert (slide.page, slide.heading) == (2, "Numbers")
    page = harness.store.keyword_search("glaciers", 1)[0]
    assert (page.page, page.text) == (2, "Glaciers retreat fast.")


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("long.pdf", pdf_bytes(["p"] * 4), "4 pages; the limit is 3 (RAGCHAT_MAX_PAGES)"),
        ("bomb.docx", with_member(docx_bytes(), "customXml/pad.xml", b"\0" * (8 << 20)),
         "RAGCHAT_MAX_DECOMPRESSED_MB"),
    ],
)
def test_a_document_past_a_limit_fails_its_job_and_the_worker_carries_on(
    harness: Harness, name: str, data: bytes, reason: str
) -> None:
    job_id, doc_id = _index(harness, name, data)
    job = harness.repo.get(job_id)
    assert job.status == "failed" and reason in job.error
    assert harness.store.count_chunks(doc_id) == 0
    assert harness.queue.receive(1, 1) == []  # acknowledged, never retried
    next_job, _ = _index(harness, "handbook.docx", docx_bytes())
    assert harness.repo.get(next_job).status == "indexed"
