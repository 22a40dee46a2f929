#!/usr/bin/env bash
# Prepares the Python venv for tests/compat/consul-python (the Consul Python client
# py-consul, pinned in requirements.txt). Idempotent: when the venv exists and was built
# from the current requirements.txt it returns at once without network access.
#
#   bash tests/compat/python/setup.sh           build or refresh the venv
#   bash tests/compat/python/setup.sh --check   exit 0 iff the venv is up to date
#
# Location: $BATATA_COMPAT_CONSUL_PY_CACHE, default $HOME/.cache/batata/compat/consul-python
# (the venv is its subdirectory venv/). Interpreter: $COMPAT_PYTHON, else the
# first of python3, python3.13 ... python3.10 that is >= 3.10 (py-consul needs it).
# Everything it prints goes to stdout; run.sh redirects it to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${BATATA_COMPAT_CONSUL_PY_CACHE:-$HOME/.cache/batata/compat/consul-python}"
venv="$cache/venv"
req="$here/requirements.txt"
stamp="$venv/.batata-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

up_to_date() {
    [[ -x "$venv/bin/python" && -f "$stamp" ]] || return 1
    [[ "$(cat "$stamp")" == "$want" ]] || return 1
    # The base interpreter of the venv may have gone away (pyenv change).
    "$venv/bin/python" -c '' 2>/dev/null
}

if [[ "${1:-}" == "--check" ]]; then
    up_to_date
    exit $?
fi

mkdir -p "$cache"
# Several run.sh may start at once (parallel cargo tests): one builds, the
# others wait for it and then find the venv up to date.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$cache/.setup.lock"
    if ! flock -w 900 9; then
        echo "setup.sh: could not take $cache/.setup.lock within 900 s" >&2
        exit 1
    fi
fi

if up_to_date; then
    echo "setup.sh: venv up to date: $venv"
    exit 0
fi

pick_python() {
    local cand
    for cand in ${COMPAT_PYTHON:-} python3 python3.13 python3.12 python3.11 python3.10; do
        if command -v "$cand" >/dev/null 2>&1 &&
            "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
            command -v "$cand"
            return 0
        fi
    done
    return 1
}

if ! py="$(pick_python)"; then
    echo "setup.sh: no Python >= 3.10 found (set COMPAT_PYTHON)" >&2
    exit 1
fi

start=$SECONDS
echo "setup.sh: building $venv with $py ($("$py" -V 2>&1))"
rm -rf "$venv"
if ! "$py" -m venv "$venv"; then
    # Debian's own python3 ships venv/ensurepip separately.
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "setup.sh: '$py -m venv' failed; installing python3-venv"
        rm -rf "$venv"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
        "$py" -m venv "$venv"
    else
        echo "setup.sh: '$py -m venv' failed (install python3-venv)" >&2
        exit 1
    fi
fi

vpy="$venv/bin/python"
# --no-deps: requirements.txt is a complete freeze; pip check proves it is.
"$vpy" -m pip install --no-input --disable-pip-version-check --no-deps -r "$req"
"$vpy" -m pip check
"$vpy" -c 'import consul, consul.exceptions; consul.Consul'
echo "$want" >"$stamp"
echo "setup.sh: venv ready in $((SECONDS - start)) s: $venv"
