"""Locating the shared evaluation data (../shared/datasets beside the repo)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def datasets_dir() -> Path:
    return Path(os.environ.get("RAGCHAT_DATASETS_DIR", REPO.parent / "shared" / "datasets"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
