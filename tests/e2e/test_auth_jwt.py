"""OIDC/JWT bearer tokens, verified by JWKS, as an alternative to API keys.

The identity provider is played by a JWKS document served over HTTP from this process
and tokens signed with joserfc; the gateway is the real auth-required one (in-process,
as in test_auth.py) in front of the platform's services.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from services.gateway.config import GatewaySettings
from tests.e2e.conftest import RunningStack
from tests.e2e.test_auth import ADMIN, Gateway, bearer

pytestmark = pytest.mark.e2e
ISSUER = "https://idp.example.test/pool-1"
AUDIENCE = "ragchat-web"


class Jwks:
    """A JWKS endpoint whose published keys a test can change (key rotation)."""

    def __init__(self) -> None:
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": "k1"})]
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = json.dumps(KeySet(jwks.keys).as_dict(private=False)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, key: RSAKey | None = None, **claims: Any) -> str:
        signer = key or self.keys[0]
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 300,
                "tenant": "oidc-tenant", **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode({"alg": "RS256", "kid": signer.kid}, body, signer)


@pytest.fixture(scope="module")
def jwks() -> Iterator[Jwks]:
    served = Jwks()
    yield served
    served.server.shutdown()


@pytest.fixture(scope="module")
def gateway(platform: RunningStack, jwks: Jwks) -> Iterator[Gateway]:
    env = platform.stack.service_env()
    targets = {f"{n}_target": env[f"RAGCHAT_{n.upper()}_TARGET"]
               for n in ("retrieval", "generation", "ingest", "memory", "ingest_worker")}
    settings = GatewaySettings(
        auth_required=True, admin_token=ADMIN, database_url=env["RAGCHAT_DATABASE_URL"],
        jwt_jwks_url=jwks.url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, **targets,
    )
    with Gateway(settings) as running:
        yield running


def test_a_valid_token_runs_as_the_tenant_of_its_claim(gateway: Gateway, jwks: Jwks) -> None:
    token = bearer(jwks.token())
    assert gateway.http.get("/probe/threadpool", headers=token).json() == {
        "tenant": "oidc-tenant"}
    assert gateway.http.get("/documents", headers=token).status_code == 200
    # API keys keep working beside tokens.
    key = gateway.new_key("keyed")
    assert gateway.http.get("/probe/threadpool", headers=bearer(key)).json() == {
        "tenant": "keyed"}


@pytest.mark.parametrize("claims", [
    {"exp": int(time.time()) - 3600}, {"iss": "https://evil.example"}, {"aud": "other-app"},
    {"exp": None},
], ids=["expired", "issuer", "audience", "no-expiry"])
def test_a_bad_token_is_401(gateway: Gateway, jwks: Jwks, claims: dict[str, Any]) -> None:
    resp = gateway.http.get("/documents", headers=bearer(jwks.token(**claims)))
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_without_a_valid_tenant_is_403(gateway: Gateway, jwks: Jwks) -> None:
    for tenant in (None, "Not A Tenant!", 42):
        resp = gateway.http.get("/documents", headers=bearer(jwks.token(tenant=tenant)))
        assert resp.status_code == 403 and "tenant" in resp.json()["detail"], tenant


def test_rotated_keys_are_fetched_and_foreign_keys_refused(gateway: Gateway, jwks: Jwks) -> None:
    rotated = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    jwks.keys.append(rotated)  # published after the gateway cached the JWKS
    ok = gateway.http.get("/documents", headers=bearer(jwks.token(key=rotated)))
    assert ok.status_code == 200, ok.text
    forged = RSAKey.generate_key(2048, parameters={"kid": "k1"})  # a known kid, wrong key
    resp = gateway.http.get("/documents", headers=bearer(jwks.token(key=forged)))
    assert resp.status_code == 401
