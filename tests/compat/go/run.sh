#!/usr/bin/env bash
# Usage: run.sh <config|naming> <host:port[,host:port...]>   (env COMPAT_PREFIX: name prefix)
# Runs one compatibility scenario with the official Nacos Go SDK. stdout: PASS/FAIL lines only.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

BIN="$HOME/.cache/batata/compat/go/compat-go"
# Build if the binary is missing or older than its sources (normally setup.sh ran beforehand).
if [ ! -x "$BIN" ] || [ -n "$(find . -maxdepth 1 \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -newer "$BIN" -print -quit)" ]; then
    if ! bash ./setup.sh >&2; then
        echo "FAIL setup: tests/compat/go/setup.sh failed (see stderr)"
        exit 1
    fi
fi

# Guarantee a FAIL line even if the binary dies without printing one (e.g. a panic inside an SDK
# goroutine).
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
"$BIN" "$@" | tee "$out"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$out"; then
    echo "FAIL crash: compat-go exited with status $rc without reporting a FAIL (see stderr)"
fi
exit "$rc"
