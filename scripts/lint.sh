#!/usr/bin/env bash
# cargo fmt --check and cargo clippy -D warnings. Clippy's check build would compile RocksDB's
# C++ a second time; when the test build already made librocksdb.a, clippy links that instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/batata/target}"
cargo fmt --all -- --check
lib=$(ls -d "$CARGO_TARGET_DIR"/debug/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -n 1 || true)
if [ -n "$lib" ]; then
  export ROCKSDB_LIB_DIR="${lib%/librocksdb.a}" ROCKSDB_STATIC=1
  # A separate target dir: the prebuilt-library build must not replace the test build's.
  export CARGO_TARGET_DIR="$CARGO_TARGET_DIR-lint"
fi
cargo clippy --locked --all-targets -- -D warnings
