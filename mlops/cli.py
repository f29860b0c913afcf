"""What every `python -m mlops.*` command does first."""

from __future__ import annotations

import logging
import os
import sys


def prepare() -> None:
    """Log to stderr at RAGCHAT_LOG_LEVEL (default WARNING) and load models offline only."""
    logging.basicConfig(level=os.environ.get("RAGCHAT_LOG_LEVEL", "WARNING").upper(),
                        stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
