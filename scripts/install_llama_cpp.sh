#!/usr/bin/env bash
# llama.cpp for the local model: llama-cpp-python built from source once, then
# installed from a cached wheel. PyPI ships it only as source; the first build takes
# about 10 minutes on 2 cores, later installs seconds. (--no-cache-dir: pip's own
# wheel cache ignores CMAKE_ARGS and would hand back a build made with other flags.)
#   PYTHON (.venv/bin/python)  RAGCHAT_WHEELHOUSE (~/.cache/ragchat/wheels)
#   RAGCHAT_LLAMA_CPU: auto (the default: the best flavour this CPU runs) | avx2 | avx512 | amx
#     avx2    portable x86-64 (AVX2, FMA, F16C): any x86-64 host of the last decade
#     avx512  + AVX-512 (F/CD/VL/DQ/BW, VBMI, VNNI): Ice Lake and later server CPUs
#     amx     + AVX512-BF16, AVX-VNNI and AMX-INT8/BF16 matrix tiles: Sapphire Rapids and
#             later, ~3.5x faster prompt evaluation than avx2 on 2 cores
# A wheel runs only on CPUs with its flavour's instructions, so each flavour has its own
# folder in the wheelhouse, and a build for another CPU is never reused.
set -euo pipefail
PYTHON=${PYTHON:-.venv/bin/python}
VERSION=0.3.36
PATCH_LEVEL=1  # bump when the source patch below changes: forces a rebuild
WHEELHOUSE=${RAGCHAT_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/ragchat/wheels}
FLAVOUR=${RAGCHAT_LLAMA_CPU:-auto}

has_flags() {  # has_flags FLAG...: every FLAG is in /proc/cpuinfo
    local flags
    flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
    for flag in "$@"; do [[ $flags == *" $flag "* ]] || return 1; done
}
AVX512_FLAGS=(avx512f avx512cd avx512vl avx512dq avx512bw avx512vbmi avx512_vnni)
AMX_FLAGS=(avx512_bf16 avx_vnni amx_tile amx_int8 amx_bf16)
if [ "$FLAVOUR" = auto ]; then
    if [ "$(uname -m)" != x86_64 ]; then FLAVOUR=generic
    elif has_flags "${AVX512_FLAGS[@]}" "${AMX_FLAGS[@]}"; then FLAVOUR=amx
    elif has_flags "${AVX512_FLAGS[@]}"; then FLAVOUR=avx512
    else FLAVOUR=avx2
    fi
fi
# Never -march=native: the flags are spelt out, so a flavour means the same everywhere.
COMMON="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAVA_BUILD=OFF"
X86="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
X86_512="-DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON"
X86_AMX="-DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON -DGGML_AMX_TILE=ON -DGGML_AMX_INT8=ON -DGGML_AMX_BF16=ON"
case $FLAVOUR in
    generic) ARGS="$COMMON" ;;
    avx2) ARGS="$COMMON $X86" ;;
    avx512) ARGS="$COMMON $X86 $X86_512" ;;
    amx) ARGS="$COMMON $X86 $X86_512 $X86_AMX" ;;
    *) echo "RAGCHAT_LLAMA_CPU=$FLAVOUR: expected auto, avx2, avx512 or amx" >&2; exit 2 ;;
esac
BUILD_ID="$VERSION-$FLAVOUR-p$PATCH_LEVEL"
WHEELS="$WHEELHOUSE/llama-cpp-python-$BUILD_ID"
MARKER=$("$PYTHON" -c "import sys; print(sys.prefix)")/.ragchat-llama-cpp

if [ "$(cat "$MARKER" 2>/dev/null)" = "$BUILD_ID" ] && "$PYTHON" -c "import llama_cpp" 2>/dev/null; then
    exit 0
fi

WORK=""
trap '[ -z "$WORK" ] || rm -rf "$WORK"' EXIT
build() {
    local src
    WORK=$(mktemp -d)
    echo "Building llama-cpp-python $VERSION ($FLAVOUR) once (about 10 min on 2 cores) into $WHEELS" >&2
    "$PYTHON" -m pip download --quiet --no-cache-dir --no-deps --no-binary :all: \
        "llama-cpp-python==$VERSION" -d "$WORK"
    tar -xzf "$WORK/llama_cpp_python-$VERSION.tar.gz" -C "$WORK"
    src="$WORK/llama_cpp_python-$VERSION"
    # GCC drops the stores that fill llama.cpp's AMX tile configuration before
    # `ldtilecfg` reads it (it does not see the intrinsic read all 64 bytes), so every
    # tile is configured empty and the first `tileloadd` dies with SIGILL. A compiler
    # barrier keeps the stores.
    local mmq="$src/vendor/llama.cpp/ggml/src/ggml-cpu/amx/mmq.cpp"
    grep -q '^    _tile_loadconfig(&tc);$' "$mmq" || { echo "AMX patch no longer applies" >&2; exit 1; }
    sed -i 's|^    _tile_loadconfig(&tc);$|    __asm__ __volatile__("" : : "r"(\&tc) : "memory");\n    _tile_loadconfig(\&tc);|' "$mmq"
    mkdir -p "$WHEELS"
    CMAKE_ARGS="$ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$PYTHON" -m pip wheel --quiet \
        --no-cache-dir --no-deps "$src" -w "$WHEELS"
}

compgen -G "$WHEELS/llama_cpp_python-$VERSION-*.whl" >/dev/null || build
"$PYTHON" -m pip install --quiet --force-reinstall --no-deps --no-index --find-links "$WHEELS" \
    "llama-cpp-python==$VERSION"
"$PYTHON" -m pip install --quiet --find-links "$WHEELS" -c constraints.txt "llama-cpp-python==$VERSION"
echo "$BUILD_ID" > "$MARKER"
