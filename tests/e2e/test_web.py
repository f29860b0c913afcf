"""The web chat UI in Debian's chromium (Playwright), against the platform as `make run` runs it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import RunningStack
from tests.e2e.web_support import (
    WebPage,
    launch_browser,
    serious_axe_violations,
    sse_body,
    web_page,
)

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

LIGHTHOUSE = (
    "The Glimmerfen lighthouse was built in 1872 by the engineer Ada Korsgaard. "
    "It stands 31 metres tall on the northern cape of Vardholm island. "
    "Its lamp was converted to electricity in 1931 and automated in 1989."
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch_browser()


@pytest.fixture
def web(browser: Any, platform: RunningStack) -> Iterator[WebPage]:
    yield from web_page(browser, platform.stack.base_url, viewport={"width": 1280, "height": 800})


@pytest.fixture(scope="module")
def lighthouse(platform: RunningStack) -> str:
    """One indexed document the conversation tests ask about; returns its id."""
    accepted = platform.upload("glimmerfen.txt", LIGHTHOUSE.encode()).json()
    assert platform.wait_job(accepted["job_id"])["status"] == "indexed"
    return str(accepted["document_id"])


def _ask(page: Any, question: str) -> Any:
    box = page.get_by_role("textbox", name=re.compile("Question"))
    box.fill(question)
    box.press("Enter")
    answer = page.locator("article.message.assistant").last
    expect(answer).not_to_have_attribute("aria-busy", "true", timeout=120_000)
    return answer


def test_upload_shows_live_status_until_indexed(web: WebPage) -> None:
    page = web.open()
    page.get_by_label("Tags (comma-separated, optional)").fill("handbook, ships")
    page.get_by_label("Files to upload").set_input_files([
        {"name": "harbour.txt", "mimeType": "text/plain",
         "buffer": b"The Tallmark harbour opened in 1901 and handles timber and grain."},
        {"name": "ferry.md", "mimeType": "text/markdown",
         "buffer": b"# Ferry\n\nThe Tallmark ferry sails to Orrey twice a day in summer."},
    ])
    rows = page.locator("#upload-list li")
    expect(rows).to_have_count(2)  # each file shows at once, before indexing ends
    statuses = page.evaluate("""() => new Promise((resolve) => {
        const seen = new Set();
        const look = () => document.querySelectorAll('#upload-list li')
            .forEach((li) => seen.add(li.dataset.status || 'uploading'));
        const timer = setInterval(() => {
            look();
            const all = [...document.querySelectorAll('#upload-list li')];
            if (all.every((li) => li.dataset.status === 'indexed')) {
                clearInterval(timer); resolve([...seen]);
            }
        }, 50);
        look();
    })""")
    assert "indexed" in statuses and len(set(statuses) - {"indexed"}) >= 1, statuses
    expect(rows.filter(has_text="harbour.txt")).to_contain_text(
        re.compile(r"indexed.*\(1 chunk\)"))
    docs = page.locator("#document-list li")
    harbour = docs.filter(has_text="harbour.txt")
    expect(harbour).to_contain_text("1 chunk ·")
    expect(harbour).to_contain_text("v1")
    expect(harbour).to_contain_text("Tags: handbook, ships")
    web.screenshot("upload-indexed")


def test_conversation_streams_cites_and_follows_up(
    web: WebPage, platform: RunningStack, lighthouse: str
) -> None:
    page = web.open()
    page.evaluate("""() => {
        window.__partials = new Set();
        new MutationObserver(() => {
            const last = [...document.querySelectorAll('article.message.assistant .text')].pop();
            if (last) window.__partials.add(last.textContent.length);
        }).observe(document.getElementById('messages'),
                   {subtree: true, childList: true, characterData: true});
    }""")
    answer = _ask(page, "Who built the Glimmerfen lighthouse?")
    # Streamed: the answer text grew through more than one length before the final render
    # (llama.cpp writes a short answer in a few tenths of a second: few distinct renders).
    assert page.evaluate("window.__partials.size") >= 2
    expect(answer).not_to_have_class(re.compile("error"))
    citation = answer.locator("ol.citations button").filter(has_text="glimmerfen.txt").first
    expect(citation).to_contain_text(re.compile(r"score \d\.\d\d"))
    markers = answer.locator("a.marker")
    if markers.count():  # the small model does not always write [n]; when it does:
        markers.first.click()
        expect(answer.locator("ol.citations button").first).to_be_focused()
    citation.click()
    dialog = page.locator("#passage-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Ada Korsgaard")
    expect(dialog.locator("#passage-meta")).to_contain_text("glimmerfen.txt")
    expect(dialog.locator("mark")).to_have_count(1)  # the supporting sentence
    web.screenshot("answer-passage")
    dialog.get_by_role("button", name="Close").click()

    second = _ask(page, "How tall is it?")
    expect(second).not_to_have_class(re.compile("error"))
    expect(page.locator("article.message")).to_have_count(4)
    web.screenshot("chat")
    assert not serious_axe_violations(page)  # answers, markers and citation buttons
    sessions = platform.http.get("/sessions").json()["sessions"]
    latest = sessions[0]
    assert latest["turn_count"] == 4
    assert latest["title"] == "Who built the Glimmerfen lighthouse?"
    item = page.locator("#session-list li").filter(has_text="Who built the Glimmerfen")
    expect(item).to_contain_text("4 turns")


def test_sessions_continue_rename_and_delete(web: WebPage, platform: RunningStack) -> None:
    sid = platform.http.post("/sessions").json()["session_id"]
    assert platform.http.patch(f"/sessions/{sid}", json={"title": "Old name"}).status_code == 200
    for _ in range(30):  # a full first page of newer sessions
        platform.http.post("/sessions")
    page = web.open()
    item = page.locator("#session-list li").filter(has_text="Old name")
    expect(page.locator("#session-list li")).to_have_count(30)
    expect(item).to_have_count(0)
    sidebar = page.get_by_role("navigation", name="Conversations")
    sidebar.get_by_role("button", name="Show more").click()
    expect(item).to_have_count(1)
    item.get_by_role("button", name="Rename Old name").click()
    page.get_by_label("Title", exact=True).fill("Lighthouse notes")
    page.get_by_label("Title", exact=True).press("Enter")
    renamed = page.locator("#session-list li").filter(has_text="Lighthouse notes")
    expect(renamed).to_have_count(1)
    assert platform.http.get("/sessions").json()["sessions"][0]["title"] == "Lighthouse notes"
    renamed.locator(".session-open").click()
    expect(page.locator("#chat-title")).to_have_text("Lighthouse notes")
    renamed.get_by_role("button", name="Delete Lighthouse notes").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
    expect(renamed).to_have_count(0)
    assert platform.http.get(f"/sessions/{sid}").status_code == 404
    page.get_by_role("button", name="New chat").click()
    expect(page.locator("#chat-title")).to_have_text("New chat")


def test_failed_uploads_show_their_reason(web: WebPage) -> None:
    web.allow(413, 415, 422)
    page = web.open()
    page.get_by_label("Files to upload").set_input_files([
        {"name": "empty.txt", "mimeType": "text/plain", "buffer": b""},
        {"name": "run.exe", "mimeType": "application/octet-stream", "buffer": b"MZ\x90\x00"},
        {"name": "big.txt", "mimeType": "text/plain", "buffer": b"x" * (1024 * 1024 + 10)},
        {"name": "broken.pdf", "mimeType": "application/pdf",
         "buffer": b"%PDF-1.7\n1 0 obj << /Type /Catalog"},
    ])
    rows = page.locator("#upload-list li")
    reasons = {
        "empty.txt": "empty",
        "run.exe": "not supported",
        "big.txt": "Too large",
        "broken.pdf": "PDF",
    }
    for name, reason in reasons.items():
        row = rows.filter(has_text=name)
        expect(row.locator(".status")).to_have_text("failed", timeout=60_000)
        expect(row).to_contain_text(reason)
    web.screenshot("upload-failures")
    # The page keeps working: a good file after the bad ones is indexed.
    page.get_by_label("Files to upload").set_input_files([
        {"name": "fine.txt", "mimeType": "text/plain", "buffer": b"Fine files still index."}])
    expect(rows.filter(has_text="fine.txt").locator(".status")).to_have_text(
        "indexed", timeout=60_000)


def test_delete_document_asks_first(web: WebPage, platform: RunningStack) -> None:
    accepted = platform.upload("doomed.txt", b"This document will be deleted soon.").json()
    assert platform.wait_job(accepted["job_id"])["status"] == "indexed"
    page = web.open()
    row = page.locator("#document-list li").filter(has_text="doomed.txt")
    row.get_by_role("button", name="Delete doomed.txt").click()
    confirm = page.locator("#confirm-dialog")
    expect(confirm).to_contain_text("doomed.txt")
    confirm.get_by_role("button", name="Cancel").click()
    expect(row).to_have_count(1)
    row.get_by_role("button", name="Delete doomed.txt").click()
    confirm.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    assert platform.http.get(f"/documents/{accepted['document_id']}").status_code == 404


def test_search_and_refusal_follow_the_settings(web: WebPage, lighthouse: str) -> None:
    page = web.open()
    page.get_by_label("Search text").fill("Korsgaard lighthouse")
    page.get_by_label("Search mode").select_option("keyword")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#search-status")).to_contain_text("(keyword)")
    expect(page.locator("#search-results li").first).to_contain_text("glimmerfen.txt")
    # Settings: keyword retrieval finds nothing for these words, so the answer is a refusal.
    page.get_by_role("button", name="Settings").click()
    page.get_by_label("Retrieval mode").select_option("keyword")
    page.get_by_label("Sources per answer (top_k)").fill("3")
    page.get_by_role("button", name="Save").click()
    page.wait_for_function("localStorage.getItem('ragchat.settings') !== null")
    stored = page.evaluate("JSON.parse(localStorage.getItem('ragchat.settings'))")
    assert stored == {"mode": "keyword", "top_k": 3}
    answer = _ask(page, "Xyzzyplugh quorbant snarfle?")
    expect(answer).to_have_class(re.compile("refusal"))
    expect(answer).to_contain_text("No answer found in your documents")
    expect(answer).not_to_have_class(re.compile("error"))
    assert page.evaluate("document.cookie") == ""
    assert not serious_axe_violations(page)  # search results and a refusal


def test_api_failures_show_clear_messages_and_the_page_keeps_working(
    web: WebPage, lighthouse: str
) -> None:
    # The real stack cannot easily be made to answer 429/503 or fail mid-stream on cue.
    web.allow(401, 429, 503)
    page = web.page
    notice = page.locator("#notice")
    page.route("**/sessions?*", lambda r: r.fulfill(
        status=503, content_type="application/json",
        body=json.dumps({"error": "unavailable", "detail": "memory is down"})))
    web.open()
    expect(notice).to_contain_text("temporarily unavailable")
    page.unroute("**/sessions?*")
    page.route("**/query/stream", lambda r: r.fulfill(
        status=429, content_type="application/json", headers={"Retry-After": "7"},
        body=json.dumps({"error": "overloaded", "detail": "all slots busy"})))
    answer = _ask(page, "Who built it?")
    expect(answer).to_have_class(re.compile("error"))
    expect(notice).to_contain_text("Try again in 7 s")
    page.unroute("**/query/stream")
    page.route("**/query/stream", lambda r: r.fulfill(
        status=200, content_type="text/event-stream", body=sse_body(
            ("delta", {"text": "The light"}),
            ("error", {"error": "unavailable", "detail": "generation is down", "status": 503}))))
    answer = _ask(page, "Who built it?")
    expect(answer).to_contain_text("The answer failed")
    expect(answer).to_contain_text("temporarily unavailable")
    page.unroute("**/query/stream")
    page.route("**/documents?*", lambda r: r.fulfill(
        status=401, content_type="application/json",
        body=json.dumps({"error": "unauthorized", "detail": "an API key is required"})))
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#settings-dialog")).to_be_visible()
    expect(page.locator("#key-reason")).to_be_visible()
    page.keyboard.press("Escape")
    page.unroute("**/documents?*")
    page.get_by_role("button", name="Dismiss").click()
    answer = _ask(page, "Who built the Glimmerfen lighthouse?")  # the page still works
    expect(answer).not_to_have_class(re.compile("error"))
    expect(notice).to_be_hidden()


def test_phone_width_has_no_sideways_scroll_and_reaches_every_control(
    browser: Any, platform: RunningStack
) -> None:
    for phone in web_page(browser, platform.stack.base_url,
                          viewport={"width": 390, "height": 844}, is_mobile=True,
                          has_touch=True):
        page = phone.open()
        wide = "document.documentElement.scrollWidth > document.documentElement.clientWidth"
        assert not page.evaluate(wide)
        expect(page.get_by_role("textbox", name=re.compile("Question"))).to_be_in_viewport()
        page.get_by_role("button", name="Documents").click()
        expect(page.get_by_label("Files to upload")).to_be_visible()
        expect(page.get_by_label("Search text")).to_be_visible()
        assert not page.evaluate(wide)
        page.get_by_role("button", name="Chats").click()  # one panel at a time
        expect(page.get_by_role("button", name="New chat")).to_be_visible()
        expect(page.get_by_label("Files to upload")).to_be_hidden()
        assert not page.evaluate(wide)
        page.get_by_role("button", name="New chat").click()  # back to the conversation
        expect(page.get_by_role("button", name="New chat")).to_be_hidden()
        expect(page.get_by_role("textbox", name=re.compile("Question"))).to_be_focused()
        phone.screenshot("phone")


def test_accessibility_axe_and_keyboard(web: WebPage, lighthouse: str) -> None:
    page = web.open()
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to the question")
    expect(skip).to_be_focused()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # visible focus
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # from the skip target onwards, by keyboard alone
    assert not serious_axe_violations(page)
    page.get_by_role("button", name="Settings").click()
    assert not serious_axe_violations(page)
