#!/usr/bin/env bash
# Batata SDK compatibility scenario with the official Nacos Java client (pinned in pom.xml).
#
#   bash tests/compat/java/run.sh <config|naming|consul_cross|auth_denied> <host:port[,host:port...]>
#
# env COMPAT_PREFIX: prefix of every dataId / service name (a random one when unset).
# stdout: only "PASS <step>" / "FAIL <step>: <why>" lines; exit 0 only when every step passed.
# Client noise goes to stderr and to log files under a temp dir; that dir is removed on success and
# kept on failure (its path and the tail of the client's logs are printed on stderr).
# Runs setup.sh first (a no-op when already built); no network access at run time.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ $# -ne 2 ]]; then
    echo "FAIL args: usage: run.sh <config|naming|consul_cross|auth_denied> <host:port[,host:port...]>"
    exit 1
fi

if ! build="$(bash "$HERE/setup.sh" --print-build-dir)" || [[ -z "$build" ]]; then
    echo "FAIL setup: setup.sh failed (see stderr)"
    exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/batata-compat-java.XXXXXX")"
mkdir -p "$work/cache" "$work/logs"

rc=0
# JM.SNAPSHOT.PATH: config snapshots + naming cache; JM.LOG.PATH: the client's log files.
# No "timeout" wrapper needed: Main has its own 110 s watchdog and always ends the JVM.
java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Djava.io.tmpdir="$work" \
    -DJM.SNAPSHOT.PATH="$work/cache" \
    -DJM.LOG.PATH="$work/logs" \
    -cp "$build/classes:$build/lib/*" \
    Main "$1" "$2" || rc=$?

if [[ $rc -eq 0 ]]; then
    rm -rf "$work"
else
    {
        echo "run.sh: java exited $rc; client files kept in $work"
        for f in "$work"/logs/nacos/*.log; do
            [[ -s "$f" ]] || continue
            echo "----- last 25 lines of $f"
            tail -n 25 "$f"
        done
    } >&2
fi
exit $rc
