#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the openraft storage conformance suite, and black-box
# tests that start real `batata` processes (standalone and clusters) on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/batata/target}"
# Cluster tests start several processes each; two at a time suits a 2-core machine.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}"
# The SDK scenario programs (Go, Python, Java) are fetched and compiled while cargo builds.
setup_log="$(mktemp)"
bash tests/compat/setup-all.sh >"$setup_log" 2>&1 &
setup_pid=$!
cargo test --locked --all-targets --no-run
if ! wait "$setup_pid"; then
  cat "$setup_log" >&2
  echo "SDK client setup failed (tests/compat/setup-all.sh)" >&2
  exit 1
fi
cargo test --locked --all-targets "$@"
