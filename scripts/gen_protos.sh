#!/usr/bin/env bash
# Regenerates the Python stubs in gen/ from protos/. Never edit gen/ by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
BIN=$(dirname "$PY")
rm -rf gen
mkdir -p gen
PATH="$BIN:$PATH" "$PY" -m grpc_tools.protoc \
  -I protos \
  --python_out=gen \
  --grpc_python_out=gen \
  --mypy_out=gen \
  --mypy_grpc_out=gen \
  $(find protos -name '*.proto' | sort)
# Package markers so tools that dislike namespace packages (mypy, pytest) see them.
find gen/ragchat -type d -exec touch {}/__init__.py \;
