#!/usr/bin/env bash
# Regenerates every stub from protos/ with buf (buf.gen.yaml, buf.gen.clients.yaml):
#   gen/ragchat/          Python: messages, gRPC stubs, type stubs (package ragchat-protos)
#   clients/node/gen/     TypeScript (JS + .d.ts) for Node, ragchat and gRPC health/reflection
#   clients/protos/grpc/  the gRPC health and reflection v1 protos for clients
# Never edit these by hand. PYTHON picks the interpreter (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHON=${PYTHON:-.venv/bin/python}
BUF=node_modules/.bin/buf
rm -rf gen/ragchat clients/node/gen clients/protos/grpc
PYTHONPATH="$PWD" "$PYTHON" scripts/vendor_grpc_protos.py clients/protos
PATH="$(dirname "$PYTHON"):$PATH" "$BUF" generate
"$BUF" generate --template buf.gen.clients.yaml
# Package markers (mypy and pytest dislike namespace packages) and the PEP 561 marker.
find gen/ragchat -type d -exec touch {}/__init__.py \;
touch gen/ragchat/py.typed
