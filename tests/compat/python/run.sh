#!/usr/bin/env bash
# Runs one compatibility scenario with the official Nacos Python SDK.
#
#   bash tests/compat/python/run.sh <config|naming> <127.0.0.1:PORT[,...]>
#
# Contract: see compat.py. stdout carries only `PASS <step>` / `FAIL <step>: <why>`
# lines; setup output and diagnostics go to stderr. Builds the venv first
# (setup.sh) if it is missing or stale.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${BATATA_COMPAT_PY_CACHE:-$HOME/.cache/batata/compat/python}"

if [[ $# -ne 2 ]]; then
    echo "usage: $0 <config|naming|auth_denied> <host:port[,host:port...]>" >&2
    exit 2
fi

if ! bash "$here/setup.sh" --check; then
    if ! bash "$here/setup.sh" >&2; then
        echo "FAIL setup: could not prepare the Python venv (see stderr)"
        exit 1
    fi
fi

exec "$cache/venv/bin/python" -u "$here/compat.py" "$@"
