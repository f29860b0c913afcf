"""Fixtures of the MLOps loop's tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "beir-mini"


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """The BEIR fixture with its judgements as the train split (fit/dev come from train)."""
    root = tmp_path / "beir-mini"
    shutil.copytree(FIXTURE, root)
    shutil.copy(root / "qrels" / "test.tsv", root / "qrels" / "train.tsv")
    return root
