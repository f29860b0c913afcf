"""Tenant isolation through the REST API: random tenants, resources and endpoints, 0 leaks.

Three tenants, each with its own API key on an auth-required gateway in front of the
platform's services, upload documents holding words no other tenant uses and hold a
conversation. Hypothesis then draws (caller, owner of a resource, endpoint, query
words) and checks that a caller never sees, changes or learns of another tenant's
document, chunk, job or session: lists and searches hold only its own, and another
tenant's id answers 404 exactly like an id that never existed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.gateway.config import GatewaySettings
from tests.e2e.conftest import RunningStack
from tests.e2e.test_auth import Gateway, bearer

pytestmark = pytest.mark.e2e
TENANTS = ("t-red", "t-green", "t-blue")


@dataclass
class Tenant:
    name: str
    key: str
    words: list[str] = field(default_factory=list)  # in this tenant's documents only
    documents: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.key)


@pytest.fixture(scope="module")
def world(platform: RunningStack) -> Iterator[tuple[Gateway, dict[str, Tenant]]]:
    env = platform.stack.service_env()
    targets = {f"{n}_target": env[f"RAGCHAT_{n.upper()}_TARGET"]
               for n in ("retrieval", "generation", "ingest", "memory", "ingest_worker")}
    gateway_settings = GatewaySettings(
        auth_required=True, admin_token="admin-token-for-isolation-tests-52c1",
        database_url=env["RAGCHAT_DATABASE_URL"], **targets)
    with Gateway(gateway_settings) as gateway:
        gateway.admin = {"Authorization": "Bearer admin-token-for-isolation-tests-52c1"}
        tenants = {name: Tenant(name, gateway.new_key(name)) for name in TENANTS}
        for tenant in tenants.values():
            _populate(gateway, tenant)
        yield gateway, tenants


def _populate(gateway: Gateway, tenant: Tenant) -> None:
    for n in range(2):
        word = f"zq{uuid.uuid4().hex[:10]}"
        tenant.words.append(word)
        text = f"The {word} protocol of {tenant.name} is reviewed every {n + 2} weeks."
        resp = gateway.http.post("/upload", headers=tenant.auth, data={"tags": "shared-tag"},
                                 files={"file": (f"policy-{n}.txt", text.encode(), "text/plain")})
        assert resp.status_code == 202, resp.text
        tenant.documents.append(resp.json()["document_id"])
        tenant.jobs.append(resp.json()["job_id"])
    for job in tenant.jobs:
        _wait_indexed(gateway, tenant, job)
    answer = gateway.http.post("/query", headers=tenant.auth, json={
        "question": f"How often is the {tenant.words[0]} protocol reviewed?", "mode": "keyword"})
    assert answer.status_code == 200, answer.text
    tenant.sessions.append(answer.json()["session_id"])


def _wait_indexed(gateway: Gateway, tenant: Tenant, job: str) -> None:
    import time

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = gateway.http.get(f"/jobs/{job}", headers=tenant.auth).json()["status"]
        if status == "indexed":
            return
        assert status != "failed"
        time.sleep(0.3)
    raise TimeoutError(job)


def _leaks(caller: Tenant, others: list[Tenant], payload: Any) -> list[str]:
    """Every other tenant's id or private word found anywhere in a response body."""
    text = str(payload)
    secrets = [s for other in others
               for s in (*other.words, *other.documents, *other.jobs, *other.sessions)]
    return [s for s in secrets if s in text]


RESOURCE_READS = ("/documents/{document}", "/jobs/{job}", "/sessions/{session}")


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(caller=st.sampled_from(TENANTS), owner=st.sampled_from(TENANTS),
       pick=st.integers(0, 1), read=st.sampled_from(RESOURCE_READS),
       mode=st.sampled_from(["dense", "keyword", "hybrid"]))
def test_no_tenant_sees_another_tenants_data(
    world: tuple[Gateway, dict[str, Tenant]], caller: str, owner: str, pick: int, read: str,
    mode: str,
) -> None:
    gateway, tenants = world
    me, them = tenants[caller], tenants[owner]
    others = [t for t in tenants.values() if t is not me]
    http = gateway.http
    path = read.format(document=them.documents[pick], job=them.jobs[pick],
                       session=them.sessions[0])
    got = http.get(path, headers=me.auth)
    assert got.status_code == (200 if me is them else 404), (path, got.text)
    never = http.get(read.format(document="doc-none", job="job-none", session="sess-none"),
                     headers=me.auth)
    if me is not them:  # another tenant's id reads exactly like an unknown one
        assert (got.status_code, got.json()["error"]) == (never.status_code,
                                                          never.json()["error"])
    searched = http.post("/search", headers=me.auth, json={
        "query": f"{them.words[pick]} protocol reviewed", "mode": mode, "top_k": 10,
        "filter": {"tags": ["shared-tag"]}})
    assert searched.status_code == 200, searched.text
    hits = searched.json()["results"]
    assert {h["document_id"] for h in hits} <= set(me.documents)
    listed = [http.get(p, headers=me.auth).json() for p in ("/documents", "/sessions")]
    assert _leaks(me, others, [searched.json(), *listed]) == []
    assert {d["document_id"] for d in listed[0]["documents"]} == set(me.documents)


def test_another_tenants_document_cannot_be_deleted(
    world: tuple[Gateway, dict[str, Tenant]],
) -> None:
    gateway, tenants = world
    red, green = tenants["t-red"], tenants["t-green"]
    for path in (f"/documents/{green.documents[0]}", f"/sessions/{green.sessions[0]}"):
        assert gateway.http.delete(path, headers=red.auth).status_code == 404
        assert gateway.http.get(path, headers=green.auth).status_code == 200
    # Continuing another tenant's conversation is refused the same way.
    resp = gateway.http.post("/query", headers=red.auth, json={
        "question": "And how often?", "session_id": green.sessions[0], "mode": "keyword"})
    assert resp.status_code == 404, resp.text
    turns = gateway.http.get(f"/sessions/{green.sessions[0]}", headers=green.auth).json()
    assert len(turns["turns"]) == 2  # green's one exchange, nothing of red's
