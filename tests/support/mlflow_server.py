"""A real `mlflow server` (SQLite backend, local artifacts) for the session's tests,
started the way `make run` starts it (devstack.mlflow)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.mlflow import MlflowServer, start_mlflow
from devstack.postgres import free_port

__all__ = ["MlflowServer", "mlflow_server"]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = start_mlflow(tmp_path_factory.mktemp("mlflow"), free_port())
    yield server
    server.stop()
