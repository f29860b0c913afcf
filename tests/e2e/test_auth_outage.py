"""The key store's database unreachable: keyed requests get a clear 503, the gateway
itself stays up (liveness 200), and no request hangs."""

from __future__ import annotations

import time

from devstack.embedded import free_port
from services.gateway.config import GatewaySettings
from tests.e2e.test_auth import ADMIN, Gateway, bearer


def test_a_database_outage_is_503_not_a_dead_gateway() -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/ragchat"
    # Production: the gateway runs no DDL on start, so it starts with the database down.
    settings = GatewaySettings(environment="production", admin_token=ADMIN,
                               database_url=nowhere)
    with Gateway(settings) as gateway:
        assert gateway.http.get("/livez").status_code == 200
        start = time.monotonic()
        resp = gateway.http.get("/documents", headers=bearer("rc_" + "k" * 43))
        assert resp.status_code == 503 and resp.json()["error"] == "unavailable"
        assert time.monotonic() - start < 10
        admin = gateway.http.get("/admin/api-keys", headers=gateway.admin)
        assert admin.status_code == 503 and admin.json()["error"] == "unavailable"
        v1 = gateway.http.get("/v1/models", headers=bearer("rc_" + "k" * 43))
        assert v1.status_code == 503 and v1.json()["error"]["code"] == "unavailable"
