"""The gateway serves the web UI: index, assets, security headers, nothing missing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.webui import WEB_DIR


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(GatewaySettings())  # no backend call is made by these routes
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


async def test_index_and_assets_are_served_with_a_self_only_policy(
    http: httpx.AsyncClient,
) -> None:
    index = await http.get("/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in index.headers["content-security-policy"]
    refs = re.findall(r'(?:src|href)="(/web/[^"]+)"', index.text)
    assert "/web/js/app.js" in refs and "/web/style.css" in refs
    for ref in refs:
        asset = await http.get(ref)
        assert asset.status_code == 200, ref
        assert asset.headers["content-security-policy"] == index.headers[
            "content-security-policy"]
    script = await http.get("/web/js/app.js")
    assert "javascript" in script.headers["content-type"]
    assert "/" not in create_app(GatewaySettings()).openapi()["paths"]  # not an API route


def test_every_module_import_resolves_and_nothing_is_fetched_from_elsewhere() -> None:
    for module in (WEB_DIR / "js").glob("*.js"):
        text = module.read_text(encoding="utf-8")
        for target in re.findall(r'from "(\.[^"]+)"', text):
            assert (module.parent / target).resolve().is_file(), f"{module.name}: {target}"
    for asset in WEB_DIR.rglob("*"):
        if asset.suffix in (".html", ".css", ".js"):
            assert not re.search(r"https?://", asset.read_text(encoding="utf-8")), asset


async def test_unknown_assets_and_escapes_are_404(http: httpx.AsyncClient) -> None:
    for path in ("/web/nope.js", "/web/../webui.py", "/web/%2e%2e/webui.py"):
        assert (await http.get(path)).status_code == 404, path
