#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the openraft storage conformance suite, and black-box
# tests that start real `batata` processes (standalone and clusters) on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/batata/target}"
# Cluster tests start several processes each; two at a time suits a 2-core machine.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}"
cargo test --locked --all-targets "$@"
