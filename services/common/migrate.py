"""python -m services.common.migrate: the one-shot schema migration.

In production it runs as an ECS task before the services start, which never run
DDL themselves; the embedded stack's services migrate on start instead.
"""

from __future__ import annotations

import argparse
import logging
import sys

from services.common.db import migrate
from services.common.logging import setup_logging
from services.common.settings import DatabaseSettings
from services.gateway.auth import schema as gateway_schema


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)  # no options: RAGCHAT_DATABASE_URL, RAGCHAT_EMBEDDING_DIM
    settings = DatabaseSettings()
    setup_logging("migrate", settings.log_level, settings.log_format)
    try:
        migrate(settings.database_dsn(), settings.embedding_dim)
        gateway_schema.migrate(settings.database_dsn())  # API keys, limits, stored bytes
    except Exception as exc:  # noqa: BLE001 - one clear line, non-zero exit
        logging.getLogger(__name__).error("migration failed: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
