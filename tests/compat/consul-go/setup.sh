#!/usr/bin/env bash
# Downloads the pinned Go modules (go.mod / go.sum: github.com/hashicorp/consul/api v1.34.5, which
# needs Go >= 1.26.7; v1.35.0 would need Go 1.27) and builds the compat-consul-go binary into
# $HOME/.cache/batata/compat/consul-go/. A module of its own, so that the Consul client's
# dependencies never move the Nacos SDK's in ../go. Idempotent: with warm module and build caches
# it takes ~1 s and does no network access.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

CACHE_DIR="$HOME/.cache/batata/compat/consul-go"
BIN="$CACHE_DIR/compat-consul-go"
mkdir -p "$CACHE_DIR"

# Serialise concurrent setups (two test processes building the same output file).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE_DIR/.setup.lock"
    flock 9
fi

# -mod=readonly: never rewrite go.mod / go.sum; a mismatch is an error, not an upgrade.
# GOTOOLCHAIN=local: fail clearly on a too-old Go instead of fetching a toolchain.
export GOFLAGS=-mod=readonly GOTOOLCHAIN=local
go mod download
go build -o "$BIN.tmp" .
mv -f "$BIN.tmp" "$BIN"
echo "compat-consul-go built: $BIN" >&2
