"""Peak memory and time of parsing hostile files, each in a fresh process.

    python benchmarks/hostile_files.py

The files of tests/e2e/test_hostile_files.py (tests/support/hostile_files.py): a
300 MB zip bomb as DOCX with honest sizes, the same as XLSX lying that it holds
1 KiB, a 2,500-page PDF and a one-page PDF claiming 2 billion pages. Each is parsed
with the default limits (RAGCHAT_MAX_DECOMPRESSED_MB 200, RAGCHAT_MAX_PAGES 2000) the
way the ingest worker parses it; "added" is the growth of the process's peak RSS
(getrusage ru_maxrss) over the peak before parsing. The last line is JSON.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

CASES = ("bomb.docx", "liar.xlsx", "pages.pdf", "claims.pdf")


def measure(name: str) -> dict[str, object]:
    """Runs inside the child process: make one file, parse it, report RSS and time."""
    from services.ingest.parsing import parse_document
    from tests.support.hostile_files import pdf_pages, zip_bomb

    makers = {
        "bomb.docx": lambda: zip_bomb("docx", lie=False),
        "liar.xlsx": lambda: zip_bomb("xlsx", lie=True),
        "pages.pdf": lambda: pdf_pages(2500),
        "claims.pdf": lambda: pdf_pages(1, claimed=2_000_000_000),
    }
    data = makers[name]()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    try:
        parse_document(name.rsplit(".", 1)[1], data)
        outcome = "parsed"
    except Exception as exc:  # noqa: BLE001 - the outcome is what is measured
        outcome = f"{type(exc).__name__}: {exc}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"file": name, "bytes": len(data), "parse_s": round(time.perf_counter() - started, 2),
            "added_mb": round(peak - before, 1), "outcome": outcome}


def main() -> None:
    results = []
    for name in CASES:
        child = subprocess.run([sys.executable, __file__, name], capture_output=True,
                               text=True, check=True)
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print(f"{'file':<12}{'bytes':>9}{'parse':>8}{'added':>8}  outcome")
    for r in results:
        print(f"{r['file']:<12}{r['bytes']:>9}{r['parse_s']:>7}s{r['added_mb']:>5} MB  "
              f"{r['outcome']}")
    print(json.dumps(results))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print(json.dumps(measure(sys.argv[1])))
    else:
        main()
