#!/usr/bin/env bash
# Builds Batata (release) and starts a standalone node on the embedded store, with the default
# ports (HTTP 8848, Consul 8500, console 8081, cluster 9849) and data in ./data.
# Extra arguments go to `batata` (e.g. --config conf/application.yml).
#
# Authentication is on, as always by default. Unless BATATA_AUTH_SECRET_KEY and
# BATATA_ADMIN_PASSWORD are set (or a --config file sets the key), this script generates both
# once, keeps them in ./data/ (mode 600) and prints where: the administrator is `nacos`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/batata/target}"
cargo build --release --locked
if [[ " $* " != *" --config "* ]]; then
  mkdir -p data
  umask 077
  if [[ -z "${BATATA_AUTH_SECRET_KEY:-}" ]]; then
    [[ -s data/auth-secret-key ]] || head -c 32 /dev/urandom | base64 > data/auth-secret-key
    BATATA_AUTH_SECRET_KEY="$(cat data/auth-secret-key)"
    export BATATA_AUTH_SECRET_KEY
  fi
  if [[ -z "${BATATA_ADMIN_PASSWORD:-}" ]]; then
    [[ -s data/admin-password ]] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > data/admin-password
    BATATA_ADMIN_PASSWORD="$(cat data/admin-password)"
    export BATATA_ADMIN_PASSWORD
    echo "batata: log in as user 'nacos' with the password in $(pwd)/data/admin-password" >&2
  fi
fi
exec "$CARGO_TARGET_DIR/release/batata" "$@"
