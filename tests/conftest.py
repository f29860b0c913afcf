"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.common.tenancy import DEFAULT_TENANT, tenant_scope

# postgres, moto, make_database, clean_db, mlflow_server: real local infrastructure.
pytest_plugins = ["tests.support.stack", "tests.support.mlflow_server"]


@pytest.fixture(autouse=True)
def default_tenant() -> Iterator[str]:
    """Tests act for the default tenant, as a keyless gateway request does: their gRPC
    calls carry it and their database transactions set it. A test about tenants enters
    its own ``tenant_scope``."""
    with tenant_scope(DEFAULT_TENANT) as tenant:
        yield tenant
