#!/usr/bin/env bash
# Prepares every SDK scenario (Go, Python, Java; and the Consul clients in consul-go,
# consul-python): downloads the pinned clients and compiles the scenario programs, so the tests
# themselves do no network work. Idempotent and quick when done.
# Installs Maven, a JDK or python3-venv from Debian when they are missing; Go must already be
# installed (Debian's is too old): >= 1.22 for go/, >= 1.26.7 for consul-go/ (consul/api v1.34.5).
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v javac >/dev/null 2>&1 || need+=(default-jdk-headless)
python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v go >/dev/null 2>&1 || { echo "go not found: install Go >= 1.26.7 (https://go.dev/dl)" >&2; exit 1; }

pids=()
for lang in go python java consul-go consul-python; do
  bash "$lang/setup.sh" > "/tmp/batata-compat-setup-$lang.log" 2>&1 &
  pids+=("$!:$lang")
done
rc=0
for p in "${pids[@]}"; do
  if ! wait "${p%%:*}"; then
    echo "SDK setup failed for ${p#*:}:" >&2
    tail -n 40 "/tmp/batata-compat-setup-${p#*:}.log" >&2
    rc=1
  fi
done
exit $rc
