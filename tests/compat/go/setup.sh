#!/usr/bin/env bash
# Downloads the pinned Go modules (go.mod / go.sum) and builds the compat-go binary into
# $HOME/.cache/batata/compat/go/. Idempotent: with warm module and build caches it takes ~1 s
# and does no network access.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

CACHE_DIR="$HOME/.cache/batata/compat/go"
BIN="$CACHE_DIR/compat-go"
mkdir -p "$CACHE_DIR"

# Serialise concurrent setups (two test processes building the same output file).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE_DIR/.setup.lock"
    flock 9
fi

# -mod=readonly: never rewrite go.mod / go.sum; a mismatch is an error, not an upgrade.
export GOFLAGS=-mod=readonly
go mod download
go build -o "$BIN" .
echo "compat-go built: $BIN" >&2
