"""API keys, the admin API, rate limits and quotas through a real auth-required gateway.

The platform (every service its own process, as `make run` starts it) runs keyless, as
the quickstart does; this module starts a second gateway in-process (uvicorn, so logs
reach caplog) with RAGCHAT_AUTH_REQUIRED=true in front of the same services and database.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import psycopg
import pytest
import uvicorn
from fastapi.responses import StreamingResponse

from devstack.embedded import free_port
from services.common.tenancy import tenant_or_none
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e
ADMIN = "admin-token-for-tests-4d1f9a"
ROOT = Path(__file__).resolve().parents[2]


class Gateway:
    """An auth-required gateway served by uvicorn on a thread of this process."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.app = create_app(settings)
        _add_probe_routes(self.app)
        port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host="127.0.0.1", port=port, log_config=None, access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.base_url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.base_url, timeout=180)
        self.admin = {"Authorization": f"Bearer {ADMIN}"}

    def __enter__(self) -> Gateway:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(30)

    def new_key(self, tenant: str, name: str = "tests") -> str:
        resp = self.http.post("/admin/api-keys", json={"tenant": tenant, "name": name},
                              headers=self.admin)
        assert resp.status_code == 201, resp.text
        return str(resp.json()["key"])

    def set_limits(self, tenant: str, **limits: int) -> dict[str, Any]:
        resp = self.http.put(f"/admin/tenants/{tenant}/limits", json=limits, headers=self.admin)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())


def _add_probe_routes(app: Any) -> None:
    """Routes that report the tenant their code sees: in FastAPI's threadpool and inside
    the iterators of streamed responses (async and sync), where contextvars could be lost."""

    @app.get("/probe/threadpool")
    def in_threadpool() -> dict[str, str | None]:
        return {"tenant": tenant_or_none()}

    @app.get("/probe/stream")
    async def streamed() -> StreamingResponse:
        async def chunks() -> AsyncIterator[str]:
            await asyncio.sleep(0.01)
            yield f"async={tenant_or_none()};"

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/probe/sync-stream")
    def sync_streamed() -> StreamingResponse:
        return StreamingResponse(iter([f"sync={tenant_or_none()};"]), media_type="text/plain")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def gateway(platform: RunningStack) -> Iterator[Gateway]:
    env = platform.stack.service_env()
    targets = {f"{n}_target": env[f"RAGCHAT_{n.upper()}_TARGET"]
               for n in ("retrieval", "generation", "ingest", "memory", "ingest_worker")}
    settings = GatewaySettings(
        auth_required=True, admin_token=ADMIN, database_url=env["RAGCHAT_DATABASE_URL"],
        max_upload_mb=1, **targets,
    )
    with Gateway(settings) as running:
        yield running


def test_key_lifecycle_create_use_revoke(gateway: Gateway, platform: RunningStack) -> None:
    created = gateway.http.post("/admin/api-keys", json={"tenant": "acme", "name": "ci bot"},
                                headers=gateway.admin)
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"key", "key_id", "tenant", "name", "created_at"}
    assert body["key"].startswith("rc_") and len(body["key"]) > 40
    assert (body["tenant"], body["name"]) == ("acme", "ci bot")
    key = body["key"]

    accepted = gateway.http.post("/upload", headers=bearer(key),
                                 files={"file": ("relay.txt", b"The ZX-81 relay trips at 9 A.")})
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    deadline = time.monotonic() + 120
    while (job := gateway.http.get(f"/jobs/{job_id}", headers=bearer(key)).json())[
            "status"] not in ("indexed", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert job["status"] == "indexed"
    hits = gateway.http.post("/search", json={"query": "ZX-81 relay"}, headers=bearer(key))
    assert hits.status_code == 200 and hits.json()["results"][0]["source"] == "relay.txt"
    with gateway.http.stream("POST", "/query/stream", headers=bearer(key),
                             json={"question": "When does the ZX-81 relay trip?"}) as stream:
        assert stream.status_code == 200
        assert "event: done" in "".join(stream.iter_text())
    document_id = accepted.json()["document_id"]  # leave the shared platform as it was
    assert gateway.http.delete(f"/documents/{document_id}", headers=bearer(key)).status_code \
        == 204

    listed = gateway.http.get("/admin/api-keys", params={"tenant": "acme"},
                              headers=gateway.admin).json()["keys"]
    (entry,) = [k for k in listed if k["key_id"] == body["key_id"]]
    assert "key" not in entry and entry["last_used_at"] and entry["revoked_at"] is None

    revoked = gateway.http.delete(f"/admin/api-keys/{body['key_id']}", headers=gateway.admin)
    assert revoked.status_code == 204
    refused = gateway.http.get("/documents", headers=bearer(key))
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    again = gateway.http.delete(f"/admin/api-keys/{body['key_id']}", headers=gateway.admin)
    assert again.status_code == 204
    unknown = gateway.http.delete("/admin/api-keys/key_nonesuch", headers=gateway.admin)
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    # The keyless platform still serves everyone as the default tenant.
    assert platform.http.get("/documents").status_code == 200


def test_missing_or_wrong_key_is_401_on_rest_and_openai(gateway: Gateway) -> None:
    for headers in ({}, bearer("rc_not-a-real-key"), {"Authorization": "Basic eDp5"}):
        resp = gateway.http.get("/documents", headers=headers)
        assert resp.status_code == 401, headers
        assert resp.json()["error"] == "unauthorized" and resp.json()["detail"]
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    for public in ("/health", "/livez", "/docs", "/openapi.json"):
        assert gateway.http.get(public).status_code == 200, public

    wrong = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key="rc_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.models.list()
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    good = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=gateway.new_key("acme"),
                         max_retries=0)
    assert "ragchat" in {m.id for m in good.models.list()}


def test_admin_and_tenant_credentials_do_not_mix(gateway: Gateway) -> None:
    key = gateway.new_key("acme")
    as_tenant = gateway.http.get("/admin/api-keys", headers=bearer(key))
    assert as_tenant.status_code == 403 and as_tenant.json()["error"] == "forbidden"
    as_admin = gateway.http.get("/documents", headers=gateway.admin)
    assert as_admin.status_code == 403 and "not a tenant" in as_admin.json()["detail"]
    assert gateway.http.get("/admin/api-keys").status_code == 401
    assert gateway.http.get("/admin/api-keys", headers=bearer("guess")).status_code == 401
    for bad in ({"tenant": "Acme Corp!", "name": "x"}, {"tenant": "acme\n", "name": "x"},
                {"tenant": "acme", "name": ""}, {"tenant": "acme", "name": "nul\u0000"},
                {"tenant": "acme", "name": "x", "scopes": ["all"]}):
        resp = gateway.http.post("/admin/api-keys", json=bad, headers=gateway.admin)
        assert resp.status_code == 422 and resp.json()["error"] == "invalid_request", bad
    listed = gateway.http.get("/admin/api-keys", params={"tenant": "../etc"},
                              headers=gateway.admin)
    assert listed.status_code == 422


def test_requests_run_as_the_keys_tenant_in_threads_and_streams(gateway: Gateway) -> None:
    key = gateway.new_key("tenant-probe")
    assert gateway.http.get("/probe/threadpool", headers=bearer(key)).json() == {
        "tenant": "tenant-probe"}
    assert gateway.http.get("/probe/stream", headers=bearer(key)).text == "async=tenant-probe;"
    assert gateway.http.get("/probe/sync-stream", headers=bearer(key)).text == (
        "sync=tenant-probe;")


def test_rate_limit_answers_429_with_retry_after(gateway: Gateway) -> None:
    key = gateway.new_key("rate-limited")
    limits = gateway.set_limits("rate-limited", requests_per_minute=3)
    assert limits["limits"]["requests_per_minute"] == 3
    assert limits["overrides"]["uploads_per_hour"] is None  # the gateway default applies
    codes = [gateway.http.get("/documents", headers=bearer(key)).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    refused = gateway.http.get("/documents", headers=bearer(key))
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert "requests_per_minute" in refused.json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 20  # one request back every 20 s
    client = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.models.list()
    # Another key of another tenant is not affected.
    assert gateway.http.get("/documents", headers=bearer(gateway.new_key("acme"))).status_code \
        == 200


def test_upload_limits_storage_quota_and_uploads_per_hour(gateway: Gateway) -> None:
    key = gateway.new_key("quota")
    gateway.set_limits("quota", uploads_per_hour=3, storage_bytes=100)
    sixty = b"The storage quota test uploads sixty bytes each time: " + b"." * 6
    assert len(sixty) == 60

    def upload(name: str, idem: str = "") -> httpx.Response:
        headers = {**bearer(key), **({"Idempotency-Key": idem} if idem else {})}
        return gateway.http.post("/upload", headers=headers,
                                 files={"file": (name, sixty, "text/plain")})

    first = upload("a.txt", idem="quota-a")
    assert first.status_code == 202, first.text
    replay = upload("a.txt", idem="quota-a")
    assert replay.json() == first.json()
    used = gateway.http.get("/admin/tenants/quota/limits", headers=gateway.admin).json()
    assert used["storage_used_bytes"] == 60  # the replay stored nothing more
    over = upload("b.txt")
    assert over.status_code == 413 and over.json()["error"] == "storage_quota_exceeded"
    assert "storage_bytes" in over.json()["detail"] and "100" in over.json()["detail"]
    hourly = upload("c.txt")
    assert hourly.status_code == 429 and "uploads_per_hour" in hourly.json()["detail"]
    assert int(hourly.headers["Retry-After"]) > 60
    document_id = first.json()["document_id"]
    deleted = gateway.http.delete(f"/documents/{document_id}", headers=bearer(key))
    assert deleted.status_code == 204
    after = gateway.http.get("/admin/tenants/quota/limits", headers=gateway.admin).json()
    assert after["storage_used_bytes"] == 0


def test_keys_are_stored_hashed_and_never_logged(
    gateway: Gateway, platform: RunningStack, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        created = gateway.http.post("/admin/api-keys", json={"tenant": "secretive", "name": "n"},
                                    headers=gateway.admin).json()
        key = created["key"]
        assert gateway.http.get("/documents", headers=bearer(key)).status_code == 200
        assert gateway.http.get("/documents", headers=bearer(key + "x")).status_code == 401
        gateway.http.delete(f"/admin/api-keys/{created['key_id']}", headers=gateway.admin)
    assert caplog.records, "the gateway logged nothing at all: the check would be vacuous"
    assert key not in caplog.text and ADMIN not in caplog.text
    for log in (platform.stack.config.log_dir or Path()).glob("*.log"):
        assert key not in log.read_text(errors="replace"), log.name
    dsn = platform.stack.service_env()["RAGCHAT_DATABASE_URL"]
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT * FROM api_keys WHERE key_id = %s",
                           (created["key_id"],)).fetchone()
        assert row is not None and row[1] == hashlib.sha256(key.encode()).hexdigest()
        assert not [value for value in row if isinstance(value, str) and key in value]


@pytest.mark.parametrize("env", [{"RAGCHAT_ENVIRONMENT": "production"},
                                 {"RAGCHAT_AUTH_REQUIRED": "true"}], ids=["production", "auth"])
def test_gateway_refuses_to_start_without_an_admin_token(
    env: dict[str, str], tmp_path: Path
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAGCHAT_")}
    result = subprocess.run(
        [sys.executable, "-m", "services.gateway"], cwd=tmp_path, capture_output=True,
        text=True, timeout=60,
        env={**clean, **env, "RAGCHAT_HTTP_PORT": str(free_port()),
             "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'gen'}"},
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "RAGCHAT_ADMIN_TOKEN must be set" in result.stderr
