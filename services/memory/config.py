"""Settings of the memory service."""

from __future__ import annotations

from services.common.settings import DatabaseSettings

DEFAULT_PORT = 50054


class MemorySettings(DatabaseSettings):
    """RAGCHAT_* environment variables read by the memory service."""
