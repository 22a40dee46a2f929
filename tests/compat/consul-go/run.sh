#!/usr/bin/env bash
# Usage: run.sh consul|acl <host:port[,host:port...]>
# Runs a Consul compatibility scenario ("acl": against a server with ACLs on, not yet
# bootstrapped) with the official Consul Go client
# (github.com/hashicorp/consul/api) against Batata's Consul HTTP API (http://<addr>/v1/...).
# Env: COMPAT_PREFIX (key / service name prefix), COMPAT_NACOS_SERVICE, COMPAT_NACOS_INSTANCE,
# COMPAT_NACOS_META, COMPAT_NACOS_DISABLED_SERVICE (step nacos_visible), COMPAT_STEPS (run only these steps; debugging),
# CONSUL_HTTP_TOKEN (the token the "consul" scenario sends).
# stdout: PASS/FAIL lines only.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [ $# -ne 2 ]; then
    echo "FAIL args: usage: run.sh consul|acl <host:port[,host:port...]>"
    exit 1
fi

BIN="$HOME/.cache/batata/compat/consul-go/compat-consul-go"
# Build if the binary is missing or older than its sources (normally setup.sh ran beforehand).
if [ ! -x "$BIN" ] || [ -n "$(find . -maxdepth 1 \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -newer "$BIN" -print -quit)" ]; then
    if ! bash ./setup.sh >&2; then
        echo "FAIL setup: tests/compat/consul-go/setup.sh failed (see stderr)"
        exit 1
    fi
fi

# Guarantee a FAIL line even if the binary dies without printing one.
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
"$BIN" "$@" | tee "$out"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$out"; then
    echo "FAIL crash: compat-consul-go exited with status $rc without reporting a FAIL (see stderr)"
fi
exit "$rc"
