"""benchmarks/ingest_throughput.py --small runs end to end (figures are not asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATASET = REPO / "tests" / "fixtures" / "beir-mini"


def test_the_ingest_benchmark_runs_and_reports_json(tmp_path: Path) -> None:
    environ = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": f"{REPO}:{REPO / 'gen'}"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "ingest_throughput.py"), "--small",
         "--dataset", str(DATASET)],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["documents"] == 8
    assert report["chunks"] >= 8
    assert report["large_chunks"] > 50
    assert report["tiny_bytes"] == 62 and report["tiny_time_to_indexed_s"] > 0
    assert report["ratio_to_raw_encode"] > 0 and report["peak_rss_mb"] > 0
