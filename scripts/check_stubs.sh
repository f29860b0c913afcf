#!/usr/bin/env bash
# Fails when the generated files differ from what git has (committed or staged): changed,
# deleted or new untracked files under any generator's output. Run after gen_protos.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
OUTPUTS=(gen clients/node/gen clients/protos)
stale=$( (git diff --name-status -- "${OUTPUTS[@]}";
          git ls-files --others --exclude-standard -- "${OUTPUTS[@]}" | sed 's/^/??\t/') )
if [ -n "$stale" ]; then
  echo "generated stubs are stale: run 'make protos' and commit:" >&2
  echo "$stale" >&2
  exit 1
fi
