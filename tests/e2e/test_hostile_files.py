"""Hostile files through the real platform: each ends as a clear 4xx or a `failed` job
with its reason, nothing is fetched, and the ingest worker's memory stays bounded.

The worker's peak RSS (VmHWM, which only grows) is read before and after the files;
with the default limits (RAGCHAT_MAX_DECOMPRESSED_MB 200, RAGCHAT_MAX_PAGES 2000) a
300 MB zip bomb or a 2,500-page PDF must not raise it by more than RSS_BOUND_MB.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningStack
from tests.support.hostile_files import pdf_pages, zip_bomb

pytestmark = pytest.mark.e2e
RSS_BOUND_MB = 150


def _peak_rss_mb(platform: RunningStack) -> float:
    pid = platform.stack.processes["ingest-worker"].pid
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


class _Listener(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def listener() -> Iterator[tuple[str, list[str]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Listener.hits
    server.shutdown()


def _upload(platform: RunningStack, name: str, data: bytes, content_type: str) -> dict[str, object]:
    resp = platform.upload(name, data, content_type)
    assert resp.status_code == 202, resp.text
    return platform.wait_job(resp.json()["job_id"], timeout=240)


def test_hostile_files_fail_with_a_reason_and_memory_stays_bounded(
    platform: RunningStack,
) -> None:
    pid = platform.stack.processes["ingest-worker"].pid
    before = _peak_rss_mb(platform)
    cases = [
        ("bomb.docx", zip_bomb("docx", lie=False), "RAGCHAT_MAX_DECOMPRESSED_MB"),
        ("liar.xlsx", zip_bomb("xlsx", lie=True), ""),
        ("pages.pdf", pdf_pages(2500), "RAGCHAT_MAX_PAGES"),
        ("claims.pdf", pdf_pages(1, claimed=2_000_000_000), ""),
    ]
    for name, data, reason in cases:
        assert len(data) < 1 << 20, name  # under the test stack's upload limit
        job = _upload(platform, name, data, "application/octet-stream")
        if reason or job["status"] != "indexed":
            assert job["status"] == "failed" and job["error"], (name, job)
            assert reason in str(job["error"]), (name, job)
    grown = _peak_rss_mb(platform) - before
    assert platform.stack.processes["ingest-worker"].pid == pid  # never killed
    assert grown < RSS_BOUND_MB, f"the worker's peak RSS grew by {grown:.0f} MB"
    assert platform.http.get("/health").status_code == 200


def test_html_is_parsed_without_running_or_fetching_anything(
    platform: RunningStack, listener: tuple[str, list[str]]
) -> None:
    base, hits = listener
    page = f"""<html><head><link rel="stylesheet" href="{base}/style.css">
    <script src="{base}/app.js"></script><script>fetch("{base}/inline?zqxscriptword")</script>
    <meta http-equiv="refresh" content="0; url={base}/refresh"></head>
    <body><h1>Relay manual</h1><p>The quokkarelay trips at 40 amperes.</p>
    <img src="{base}/pixel.png"><iframe src="{base}/frame">zqxiframeword</iframe>
    <object data="{base}/object"></object><svg><image href="{base}/svg.png"/></svg>
    </body></html>"""
    job = _upload(platform, "manual.html", page.encode(), "text/html")
    assert job["status"] == "indexed", job
    found = platform.http.post("/search", json={"query": "quokkarelay amperes",
                                                "mode": "keyword"}).json()["results"]
    texts = " ".join(hit["text"] for hit in found)
    assert "quokkarelay" in texts
    assert "zqxscriptword" not in texts and "fetch(" not in texts
    assert "zqxiframeword" not in texts
    assert hits == []
