"""RAGCHAT_RATE_LIMIT_BACKEND=postgres: two gateways in front of one platform share
each key's rate-limit window, so running more gateway tasks never multiplies a limit."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from services.gateway.config import GatewaySettings
from tests.e2e.conftest import RunningStack
from tests.e2e.test_auth import ADMIN, Gateway, bearer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gateways(platform: RunningStack) -> Iterator[tuple[Gateway, Gateway]]:
    env = platform.stack.service_env()
    targets = {f"{n}_target": env[f"RAGCHAT_{n.upper()}_TARGET"]
               for n in ("retrieval", "generation", "ingest", "memory", "ingest_worker")}
    settings = GatewaySettings(
        auth_required=True, admin_token=ADMIN, database_url=env["RAGCHAT_DATABASE_URL"],
        rate_limit_backend="postgres", **targets,
    )
    with Gateway(settings) as first, Gateway(settings) as second:
        yield first, second


def test_two_gateways_count_one_window_per_key(gateways: tuple[Gateway, Gateway]) -> None:
    first, second = gateways
    key = bearer(first.new_key("shared-limits"))
    first.set_limits("shared-limits", requests_per_minute=4)
    if (left := 60 - time.time() % 60) < 5:  # stay inside one minute's window
        time.sleep(left + 0.2)
    codes = [gw.http.get("/documents", headers=key).status_code
             for gw in (first, second, first, second)]
    assert codes == [200, 200, 200, 200]
    for gw in (first, second):
        refused = gw.http.get("/documents", headers=key)
        assert refused.status_code == 429 and "requests_per_minute" in refused.json()["detail"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Another key of the same tenant has its own window.
    other = bearer(second.new_key("shared-limits"))
    assert first.http.get("/documents", headers=other).status_code == 200
