#!/usr/bin/env bash
# Runs the Consul compatibility scenario with the Consul Python client py-consul.
#
#   bash tests/compat/consul-python/run.sh consul <127.0.0.1:PORT[,...]>
#
# The addresses are Batata's HTTP addresses (Consul API under /v1/). Contract: see
# compat_consul.py. stdout carries only `PASS <step>` / `FAIL <step>: <why>` lines; setup output
# and diagnostics go to stderr. Builds the venv first (setup.sh) if it is missing or stale.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${BATATA_COMPAT_CONSUL_PY_CACHE:-$HOME/.cache/batata/compat/consul-python}"

if [[ $# -ne 2 ]]; then
    echo "FAIL args: usage: $0 consul <host:port[,host:port...]>"
    exit 1
fi

if ! bash "$here/setup.sh" --check; then
    if ! bash "$here/setup.sh" >&2; then
        echo "FAIL setup: could not prepare the Python venv (see stderr)"
        exit 1
    fi
fi

exec "$cache/venv/bin/python" -u "$here/compat_consul.py" "$@"
