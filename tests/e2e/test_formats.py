"""Every new file type through the REST gateway; citations say where their text came from."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import RunningStack
from tests.unit.ingest.documents import docx_bytes, pdf_bytes, pptx_bytes, xlsx_bytes

pytestmark = pytest.mark.e2e


def _indexed(platform: RunningStack, name: str, data: bytes, content_type: str = "") -> str:
    resp = platform.upload(name, data, content_type or "application/octet-stream")
    assert resp.status_code == 202, resp.text
    job = platform.wait_job(resp.json()["job_id"])
    assert job["status"] == "indexed", job
    return str(resp.json()["document_id"])


def _top_hit(platform: RunningStack, query: str, doc_id: str) -> dict[str, object]:
    body = {"query": query, "mode": "keyword", "top_k": 1,
            "filter": {"document_ids": [doc_id]}}
    results = platform.http.post("/search", json=body).json()["results"]
    assert results, query
    return dict(results[0])


def test_office_files_are_searchable_with_their_place(platform: RunningStack) -> None:
    handbook = _indexed(platform, "handbook.docx", docx_bytes())
    hit = _top_hit(platform, "annual sick", handbook)
    assert hit["heading"] == "Benefits > Leave" and hit["page"] is None
    assert "| Annual | 25 |\n| Sick | 10 |" in str(hit["text"])
    deck = _indexed(platform, "deck.pptx", pptx_bytes())
    assert (lambda h: (h["page"], h["heading"]))(_top_hit(platform, "revenue", deck)) == (
        2, "Numbers")
    sheet = _indexed(platform, "staff.xlsx", xlsx_bytes())
    assert _top_hit(platform, "desks oslo", sheet)["heading"] == "Offices"


def test_csv_and_json_uploads_are_indexed(platform: RunningStack) -> None:
    rows = _indexed(platform, "fleet.csv", b"ship,port\nNordlys,Bergen\nPolaris,Hull\n")
    assert "| Polaris | Hull |" in str(_top_hit(platform, "polaris", rows)["text"])
    config = _indexed(platform, "config.json", b'{"retention": {"days": 30, "bucket": "cold"}}')
    hit = _top_hit(platform, "retention bucket", config)
    assert hit["heading"] == "retention" and "retention > days: 30" in str(hit["text"])


def test_a_pdf_citation_names_its_page(platform: RunningStack) -> None:
    data = pdf_bytes(["Contents.", "The Quillon turbine was installed at Narvik in 1962."])
    doc_id = _indexed(platform, "turbines.pdf", data, "application/pdf")
    answer = platform.http.post("/query", json={
        "question": "Where was the Quillon turbine installed?",
        "filter": {"document_ids": [doc_id]}}).json()
    pages = {c["page"] for c in answer["citations"] if c["document_id"] == doc_id}
    assert 2 in pages


def test_a_file_whose_bytes_contradict_its_office_name_fails_with_a_reason(
    platform: RunningStack,
) -> None:
    resp = platform.upload("notes.docx", b"just plain words, not a Word file")
    if resp.status_code == 415:  # the gateway checked the bytes up front
        return
    job = platform.wait_job(resp.json()["job_id"])
    assert job["status"] == "failed" and "DOCX" in job["error"]
