"""The generated Node (TypeScript) client against the real services: `node --test`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningStack

ROOT = Path(__file__).resolve().parents[2]
NODE_TESTS = ROOT / "clients" / "node" / "test"


@pytest.mark.e2e
def test_node_client_passes_its_tests_against_the_platform(platform: RunningStack) -> None:
    node = shutil.which("node")
    assert node, "Node 20+ is needed (see the README quickstart)"
    assert (ROOT / "node_modules" / "@grpc" / "grpc-js").is_dir(), "run `make install`"
    ports = platform.stack.config.grpc_ports
    env = {**os.environ, **{
        f"RAGCHAT_{name.upper()}_TARGET": f"127.0.0.1:{ports[name]}"
        for name in ("retrieval", "generation", "ingest", "memory")
    }}
    result = subprocess.run(
        [node, "--test", "--test-reporter=tap", str(NODE_TESTS)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    assert "# skipped 0" in report and "# pass 5" in report, report[-3000:]
