"""schemathesis against the live gateway's own OpenAPI document, every check on.

The platform runs as `make run` runs it, its generation service on the openai provider
against the fake OpenAI server (so the thousands of generated questions are answered
at once, not at a CPU model's pace). schemathesis runs every phase (examples,
coverage, fuzzing, and the stateful phase that follows the documented links) with a
fixed seed, so a CI failure can be replayed; the test requires 0 failures of any check
and at least MIN_CASES generated test cases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningStack, dump_logs, stack_config, start_stack
from tests.support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.e2e
ADMIN = "admin-token-for-the-fuzzer-7f3c9a"
KEY = "sk-schemathesis-upstream"
MIN_CASES = 1000
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module")
def fuzzed(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[RunningStack]:
    root = tmp_path_factory.mktemp("schemathesis")
    failed_before = request.session.testsfailed
    with FakeOpenAI(api_key=KEY, reply=lambda chat: "It is documented [1].") as fake:
        running = RunningStack(start_stack(stack_config(root, {
            "RAGCHAT_LLM_PROVIDER": "openai",
            "RAGCHAT_OPENAI_BASE_URL": fake.base_url,
            "RAGCHAT_OPENAI_API_KEY": KEY,
            "RAGCHAT_OPENAI_MODEL": "upstream-model",
            "RAGCHAT_MAX_UPLOAD_MB": "1",
            "RAGCHAT_RERANKER": "embedding",  # so `rerank: true` is valid input too
            "RAGCHAT_ADMIN_TOKEN": ADMIN,  # the admin API is fuzzed too (keyless tenants)
        })), root / "spans.jsonl")
        accepted = running.upload("leave.txt", b"Staff get 25 days of paid leave a year.")
        running.wait_job(accepted.json()["job_id"])
        yield running
        running.http.close()
        running.stack.stop()
    if request.session.testsfailed > failed_before:
        dump_logs(root / "logs")


def run_schemathesis(base_url: str, report: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`schemathesis run` as a user would type it (see README), writing a JSON report."""
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
        f"{base_url}/openapi.json", "--report", "json", "--report-json-path", str(report),
        *extra,
    ]
    env = {**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"}
    # Run in the report's folder: whatever state hypothesis keeps stays out of the repo.
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=540,
                          check=False, cwd=report.parent)


def test_every_check_passes_on_every_generated_case(
    fuzzed: RunningStack, tmp_path: Path
) -> None:
    report_path = tmp_path / "report.json"
    result = run_schemathesis(fuzzed.stack.base_url, report_path,
                              "-H", f"Authorization: Bearer {ADMIN}")
    summary = result.stdout[-8000:] + result.stderr[-2000:]
    assert result.returncode == 0, summary
    report = json.loads(report_path.read_text())
    assert report["complete"] and report["operations"]["tested"] == report["operations"]["total"]
    assert report["failures"] == [] and report["errors"] == []
    phases = {name: phase["status"] for name, phase in report["phases"].items()}
    assert phases == {"examples": "skip", "coverage": "success", "fuzzing": "success",
                      "stateful": "success"}, phases  # the schema has no examples
    cases = report["test_cases"]["generated"]
    assert cases >= MIN_CASES and report["test_cases"]["with_failures"] == 0, summary
    assert fuzzed.http.get("/health").status_code == 200  # nothing fell over
