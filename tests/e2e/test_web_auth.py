"""The web UI against a gateway that requires API keys: the key prompt, then success."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.embedded import free_port
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from tests.e2e.conftest import RunningStack
from tests.e2e.web_support import launch_browser, web_page

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        "/admin/api-keys" not in create_app(GatewaySettings()).openapi()["paths"],
        reason="needs API keys (POST /admin/api-keys), which the auth work adds",
    ),
]
expect = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch_browser()


@pytest.fixture(scope="module")
def secured(platform: RunningStack) -> Iterator[tuple[str, str]]:
    """A second gateway, in front of the same services, that requires a key.

    Yields (base URL, an API key it accepts).
    """
    port, admin = free_port(), secrets.token_urlsafe(32)
    env = {**platform.stack.service_env(), "RAGCHAT_HTTP_PORT": str(port),
           "RAGCHAT_AUTH_REQUIRED": "true", "RAGCHAT_ADMIN_TOKEN": admin}
    process = subprocess.Popen([sys.executable, "-m", "services.gateway"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/livez", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.3)
        created = httpx.post(f"{base}/admin/api-keys", json={"tenant": "webui", "name": "browser"},
                             headers={"Authorization": f"Bearer {admin}"}, timeout=30)
        assert created.status_code == 201, created.text
        yield base, created.json()["key"]
    finally:
        process.terminate()
        process.wait(30)


def test_key_prompt_then_success(browser: Any, secured: tuple[str, str]) -> None:
    base, key = secured
    for web in web_page(browser, base, viewport={"width": 1280, "height": 800}):
        web.allow(401)
        page = web.open()
        dialog = page.locator("#settings-dialog")
        expect(dialog).to_be_visible()
        expect(page.locator("#key-reason")).to_be_visible()
        expect(page.locator("#notice")).to_contain_text("API key is required")
        web.screenshot("auth-key-prompt")
        page.get_by_label("API key").fill(key)
        with page.expect_response(lambda r: "/documents" in r.url and r.status == 200):
            page.get_by_label("API key").press("Enter")  # saves, then reloads with the key
        expect(dialog).to_be_hidden()
        expect(page.locator("#notice")).to_be_hidden()
        box = page.get_by_role("textbox", name=re.compile("Question"))
        box.fill("Is anything indexed for this tenant?")
        box.press("Enter")
        answer = page.locator("article.message.assistant").last
        expect(answer).not_to_have_attribute("aria-busy", "true", timeout=120_000)
        expect(answer).not_to_have_class(re.compile("error"))
        assert page.evaluate("localStorage.getItem('ragchat.apiKey')") == key
        assert page.evaluate("document.cookie") == ""
