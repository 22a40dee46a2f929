#!/usr/bin/env bash
# Builds Batata (release) and starts a standalone node on the embedded store, with the default
# ports (HTTP 8848, Consul 8500, console 8081, cluster 9849) and data in ./data.
# Extra arguments go to `batata` (e.g. --config conf/application.yml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/batata/target}"
cargo build --release --locked
exec "$CARGO_TARGET_DIR/release/batata" "$@"
