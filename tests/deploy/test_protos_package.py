"""The generated Python stubs install as the `ragchat-protos` package (no path tricks)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.deploy.templates import ROOT


def test_ragchat_protos_wheel_installs_every_contract(tmp_path: Path) -> None:
    source = shutil.copytree(ROOT / "gen", tmp_path / "src",
                             ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("ragchat_protos-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "ragchat/py.typed" in names
    for proto in (ROOT / "protos" / "ragchat").rglob("*.proto"):
        stem = str(proto.relative_to(ROOT / "protos").with_suffix(""))
        assert {f"{stem}_pb2.py", f"{stem}_pb2.pyi", f"{stem}_pb2_grpc.py"} <= names, stem

    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         str(wheel)], capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stderr[-2000:]
    code = ("import ragchat.retrieval.v1.retrieval_pb2_grpc as m, "
            "ragchat.ingest.v1.ingest_pb2 as i; "
            "print(m.__file__); print(i.SubmitDocumentRequest(filename='a').filename)")
    ran = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, text=True,
                         capture_output=True, timeout=60, env={"PYTHONPATH": str(target)})
    assert ran.returncode == 0, ran.stderr[-2000:]
    where, value = ran.stdout.split()
    assert Path(where).is_relative_to(target) and value == "a"
