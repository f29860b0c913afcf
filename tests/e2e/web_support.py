"""Browser plumbing for the web UI tests: Debian's chromium via Playwright, one per module.

Every page records console errors, uncaught exceptions and requests to other origins;
a test fails on any of them (except the "Failed to load resource" lines of the API
statuses it provokes on purpose).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
_RESOURCE_STATUS = re.compile(
    r"Failed to load resource: the server responded with a status of (\d+)"
)


def launch_browser() -> Iterator[Any]:
    """Debian's chromium, driven by Playwright (never `playwright install`)."""
    require_browser()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def require_browser() -> None:
    """Skip without chromium, except in CI, where a missing browser is a failure."""
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"chromium not found at {CHROMIUM}; `make install` installs it as root")
    pytest.skip("chromium is not installed (apt-get install chromium); CI runs these tests")


@dataclass
class WebPage:
    """A page on the gateway's UI plus what it logged."""

    page: Any
    base_url: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    allowed_statuses: set[int] = field(default_factory=set)

    def open(self) -> Any:
        self.page.goto(self.base_url + "/")
        self.page.wait_for_load_state("networkidle")
        return self.page

    def allow(self, *statuses: int) -> None:
        """API statuses this test provokes: their console lines are expected."""
        self.allowed_statuses.update(statuses)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def unexpected_errors(self) -> list[str]:
        out = []
        for text in self.errors:
            status = _RESOURCE_STATUS.search(text)
            if status and int(status.group(1)) in self.allowed_statuses:
                continue
            out.append(text)
        return out


def sse_body(*events: tuple[str, dict[str, Any]]) -> str:
    """A /query/stream body: `event: name` / `data: json` blocks."""
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


def serious_axe_violations(page: Any) -> list[tuple[str, str, list[Any]]]:
    """axe-core (from npm) run on the page as it is: its serious and critical violations."""
    if not page.evaluate("typeof axe !== 'undefined'"):
        # Evaluated over the DevTools protocol: add_script_tag() would add an inline
        # <script>, which the UI's Content-Security-Policy (rightly) blocks.
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def web_page(browser: Any, base_url: str, **context_args: Any) -> Iterator[WebPage]:
    """A fresh browser context (own localStorage); asserts a clean console at the end."""
    context = browser.new_context(base_url=base_url, **context_args)
    page = context.new_page()
    page.set_default_timeout(30_000)
    web = WebPage(page, base_url)
    page.on("console", lambda m: m.type == "error" and web.errors.append(m.text))
    page.on("pageerror", lambda exc: web.errors.append(f"uncaught: {exc}"))
    page.on("request", lambda r: r.url.startswith(("http", "ws")) and not r.url.startswith(
        base_url) and web.foreign.append(r.url))
    yield web
    context.close()
    assert not web.unexpected_errors(), f"browser console errors: {web.unexpected_errors()}"
    assert not web.foreign, f"third-party requests: {web.foreign}"
