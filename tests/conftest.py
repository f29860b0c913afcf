"""Fixtures shared by every test package."""

from __future__ import annotations

# postgres, moto, make_database, clean_db, mlflow_server: real local infrastructure.
pytest_plugins = ["tests.support.stack", "tests.support.mlflow_server"]
