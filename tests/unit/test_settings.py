"""Settings that decide failure and deployment behaviour."""

from __future__ import annotations

import pytest

from services.common.settings import DatabaseSettings


def test_the_database_password_secret_joins_the_url_and_never_shows() -> None:
    settings = DatabaseSettings(
        database_url="postgresql://ragchat@db.internal:5432/ragchat",
        database_password="s3cr3t-from-secrets-manager",
    )
    dsn = settings.database_dsn()
    assert "password=s3cr3t-from-secrets-manager" in dsn and "host=db.internal" in dsn
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in str(settings.model_dump())
    assert DatabaseSettings(database_url="postgresql://x@h/db").database_dsn() == (
        "postgresql://x@h/db"
    )


def test_production_refuses_a_placeholder_database_password() -> None:
    settings = DatabaseSettings(environment="production", database_password="changeme")
    with pytest.raises(ValueError, match="placeholder"):
        settings.database_dsn()


def test_services_migrate_on_start_only_outside_production() -> None:
    assert DatabaseSettings().should_migrate()
    assert not DatabaseSettings(environment="production").should_migrate()
    assert DatabaseSettings(environment="production", auto_migrate=True).should_migrate()
    assert not DatabaseSettings(auto_migrate=False).should_migrate()
