#!/usr/bin/env bash
# llama.cpp for the local model: llama-cpp-python built from source once, then
# installed from a cached wheel. PyPI ships it only as source; the first build takes
# about 10-15 minutes on 2 cores, later installs seconds. (--no-cache-dir: pip's own
# wheel cache ignores CMAKE_ARGS and would hand back a build made with other flags.)
#   PYTHON (.venv/bin/python)  RAGCHAT_WHEELHOUSE (~/.cache/ragchat/wheels)
set -euo pipefail
PYTHON=${PYTHON:-.venv/bin/python}
VERSION=0.3.36
WHEELHOUSE=${RAGCHAT_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/ragchat/wheels}
# Portable x86-64 (AVX2) instead of -march=native: the wheel runs on any AVX2 host,
# and AMX stays off (some VMs advertise AMX but fault on it: a segfault in decode).
CMAKE_ARGS_X86="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
-DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"

if "$PYTHON" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$VERSION')" 2>/dev/null; then
    exit 0
fi
if ! compgen -G "$WHEELHOUSE/llama_cpp_python-$VERSION-*.whl" >/dev/null; then
    echo "Building llama-cpp-python $VERSION once (about 10-15 min on 2 cores) into $WHEELHOUSE" >&2
    mkdir -p "$WHEELHOUSE"
    args=""
    [ "$(uname -m)" = "x86_64" ] && args=$CMAKE_ARGS_X86
    CMAKE_ARGS="$args" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$PYTHON" -m pip wheel --quiet --no-cache-dir \
        --no-deps --no-binary llama-cpp-python "llama-cpp-python==$VERSION" -w "$WHEELHOUSE"
fi
"$PYTHON" -m pip install --quiet --find-links "$WHEELHOUSE" --only-binary llama-cpp-python \
    -c constraints.txt "llama-cpp-python==$VERSION"
