#!/usr/bin/env bash
# Resolves the pinned Nacos Java client and compiles Main.java, once.
#
#   bash tests/compat/java/setup.sh [--print-build-dir]
#
# Output goes to $HOME/.cache/batata/compat/java/builds/<hash of pom.xml + src>/ (classes/ and lib/*.jar),
# never into this directory; Maven's own downloads stay in ~/.m2. Idempotent: when a build for the current
# sources is complete it only hashes a few files and exits. Concurrent callers serialise on a lock file.
# With --print-build-dir the build directory is printed on stdout (all other output goes to stderr).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${HOME}/.cache/batata/compat/java"
mkdir -p "$CACHE/builds"

stamp="$(cd "$HERE" && { echo pom.xml; cat pom.xml; find src -type f | LC_ALL=C sort | while read -r f; do echo "$f"; cat "$f"; done; } \
    | sha256sum | cut -c1-16)"
build="$CACHE/builds/$stamp"

if [[ ! -f "$build/.ok" ]]; then
    exec 9>"$CACHE/.lock"
    flock -w 600 9 || { echo "setup.sh: could not lock $CACHE/.lock within 600 s" >&2; exit 1; }
    if [[ ! -f "$build/.ok" ]]; then
        command -v mvn >/dev/null || { echo "setup.sh: mvn not found (need Maven 3 and a JDK >= 17)" >&2; exit 1; }
        command -v java >/dev/null || { echo "setup.sh: java not found (need a JDK >= 17)" >&2; exit 1; }
        echo "setup.sh: building $build" >&2
        rm -rf "$build"
        t0=$SECONDS
        # -Dcompat.build.dir moves Maven's whole target/ to the cache. Maven output -> stderr.
        mvn -B -q -Dstyle.color=never -f "$HERE/pom.xml" -Dcompat.build.dir="$build" compile 1>&2
        [[ -f "$build/classes/Main.class" ]] && compgen -G "$build/lib/nacos-client-*.jar" >/dev/null \
            || { echo "setup.sh: build finished but $build is incomplete" >&2; exit 1; }
        touch "$build/.ok"
        echo "setup.sh: built in $((SECONDS - t0)) s" >&2
        # Drop builds of older sources (nothing else lives in builds/).
        find "$CACHE/builds" -mindepth 1 -maxdepth 1 -type d ! -name "$stamp" -exec rm -rf {} + || true
    fi
    exec 9>&-
fi

if [[ "${1:-}" == "--print-build-dir" ]]; then
    echo "$build"
fi
