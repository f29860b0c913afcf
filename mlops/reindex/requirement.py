"""Promotion and the index: a configuration that needs another embedder needs a reindex.

The embedding model that serves is the active index generation's, never a setting: a
registered `ragchat-rag` configuration whose `requires.ragchat-embedder` names a version
is promoted only once the serving database's active generation was built with exactly
`models:/ragchat-embedder/<version>` (by `python -m mlops.reindex`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EMBEDDER = "ragchat-embedder"


def required_embedder(requires: Mapping[str, Any]) -> str:
    """models:/ragchat-embedder/<v> a configuration needs; '' when it needs none."""
    version = requires.get(EMBEDDER)
    return f"models:/{EMBEDDER}/{version}" if version not in (None, "") else ""


def embedder_refusal(requires: Mapping[str, Any], dsn: str) -> str:
    """Why the configuration cannot serve on `dsn` yet ('' when it can)."""
    needed = required_embedder(requires)
    if not needed:
        return ""
    import psycopg

    from services.common.generations import active_generation

    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            active = active_generation(conn)
    except psycopg.Error as exc:
        return (f"it needs {needed}, and the serving database could not be checked "
                f"({type(exc).__name__}); pass --no-embedder-check to promote anyway")
    if active is not None and active.model_uri == needed:
        return ""
    serving = active.model_uri or "the configured model" if active else "nothing"
    return (f"it needs {needed} but the active index generation serves {serving}; run "
            f"`python -m mlops.reindex --embedding-model {needed}` first")
