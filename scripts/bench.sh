#!/usr/bin/env bash
# Benchmarks Batata on this machine and prints a Markdown table of the results.
#
# Steps: build release binaries; record the machine (CPUs, memory, kernel, disk fsync latency);
# time a standalone node from start to ready, read its idle RSS, then run gRPC instance
# registrations on it at 1, 64 and 256 clients; start a 3-node cluster on loopback and run
# config-publish and grpc-instance-register at 1, 64 and 256 clients (entries per fsync read from
# the leader's /nacos/metrics around each durable run), config-get over HTTP and over gRPC at 64
# clients, the listener fan-out at 1,000 and 10,000 gRPC listeners and the subscriber
# (naming) fan-out at 1,000 and 10,000 gRPC subscribers, Consul KV PUT at 1, 64 and 256 clients,
# KV GET at 64 and the wake-up of 1,000 Consul blocking queries; then the same writes against a
# 3-member etcd cluster (etcd-put) for the Batata/etcd throughput ratios.
#
# Environment:
#   BENCH_DURATION=20   measured seconds per run (each run adds batata-bench's 2 s warm-up)
#   BENCH_OUT=FILE      append the Markdown report here (default: bench-results.md in the work dir)
#   BENCH_SMOKE=1       quick sanity run: every step with --smoke, no etcd
#   BENCH_SKIP_ETCD=1   skip etcd (and do not install it)
#   BENCH_PORT_BASE=28000  ports used: BASE+10..BASE+44 and BASE+1010..BASE+1040 (Batata),
#                          BASE+110..BASE+131 (etcd)
#   BENCH_TMPDIR=DIR    where the work dir is created (default $TMPDIR or /tmp; falls back to
#                       ~/.cache/batata when that is tmpfs, whose fsync would be meaningless)
#   BENCH_RUST_LOG=warn RUST_LOG for the Batata nodes
#   BENCH_PERF=1        also profile the servers (`perf record -F 499`, every thread, flat) during
#                       the runs whose performance.md targets are missed (PERF_RUNS below), and
#                       write each profile (shares by thread and by binary, top 40 symbols) to perf/NAME.txt next to
#                       the report; the sampling costs the servers about 1 %
#   CARGO_TARGET_DIR    default $HOME/.cache/batata/target
# Everything listens on 127.0.0.1 only; every process started here is stopped on exit.
set -euo pipefail
shopt -s inherit_errexit

ORIG_PWD=$PWD
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/batata/target}"

DURATION=${BENCH_DURATION:-20}
SMOKE=${BENCH_SMOKE:-0}
BASE=${BENCH_PORT_BASE:-28000}
SECRET=batata-bench-cluster-secret
LEVELS=(1 64 256)
FANOUT=(1000 10000)
SMOKE_ARGS=()
[ "$SMOKE" = 1 ] && SMOKE_ARGS=(--smoke)
# The measured share of each closed-loop run: DURATION s after batata-bench's 2 s warm-up.
MEASURED_SHARE=$(awk "BEGIN { print $DURATION / ($DURATION + 2) }")
[ "$SMOKE" = 1 ] && MEASURED_SHARE=1
for tool in curl awk dd stat; do
  command -v "$tool" >/dev/null || { echo "bench.sh needs $tool" >&2; exit 1; }
done
apt_install() { # Debian packages
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "== installing $*" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >&2
}
if [ "${BENCH_PERF:-0}" = 1 ] && ! command -v perf >/dev/null; then
  apt_install linux-perf
fi

log() { echo "== $*" >&2; }
die() { echo "bench.sh: $*" >&2; exit 1; }

# The fan-outs open one connection per listener/subscriber in batata-bench: raise the soft
# open-files limit to the hard one and check it is enough.
if [ "$SMOKE" != 1 ]; then
  need=$((FANOUT[-1] + 1000))
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  nofile=$(ulimit -n)
  if [ "$nofile" != unlimited ] && [ "$nofile" -lt "$need" ]; then
    die "the fan-outs need ulimit -n >= $need (the hard limit is $(ulimit -Hn))"
  fi
fi

# --- work dir, cleanup ------------------------------------------------------------------------
parent=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
case $(stat -f -c %T "$parent") in
  tmpfs | ramfs)
    if [ -z "${BENCH_TMPDIR:-}" ]; then
      parent=$HOME/.cache/batata
      mkdir -p "$parent"
      log "${TMPDIR:-/tmp} is in memory; using $parent for data so fsync hits a disk"
    fi
    ;;
esac
WORK=$(mktemp -d "$parent/batata-bench.XXXXXX")
DATA=$WORK/data
RES=$WORK/results
mkdir -p "$DATA" "$RES" "$WORK/logs" "$WORK/run"
OUT=${BENCH_OUT:-$WORK/bench-results.md}
[[ $OUT == /* ]] || OUT=$ORIG_PWD/$OUT
log "work dir: $WORK"

PIDS=()
stop_pids() { # stops the given processes (ours) and forgets them, so a reused PID is never hit
  local p i alive keep=()
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for i in $(seq 100); do # graceful shutdown gets up to 10 s, then SIGKILL
    alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "$@"; do
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  for p in ${PIDS[@]+"${PIDS[@]}"}; do
    [[ " $* " == *" $p "* ]] || keep+=("$p")
  done
  PIDS=(${keep[@]+"${keep[@]}"})
}
cleanup() {
  local rc=$?
  trap - EXIT
  if [ ${#PIDS[@]} -gt 0 ]; then stop_pids "${PIDS[@]}"; fi
  rm -rf "$DATA"
  [ "$rc" = 0 ] || echo "bench.sh failed (exit $rc); logs are in $WORK/logs" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
check_ports() {
  local p
  for p in "$@"; do
    if port_in_use "$p"; then die "port $p is in use; set BENCH_PORT_BASE to move every port"; fi
  done
}

# Processes are started from their own directory so a developer's conf/application.yml is not
# picked up, and with every inherited BATATA_* variable removed so only ours apply.
UNSET=()
for v in $(compgen -e); do
  if [[ $v == BATATA_* ]]; then UNSET+=(-u "$v"); fi
done
LAST_PID=
spawn() { # name, then the command (for Batata: env assignments and the binary)
  local name=$1
  shift
  mkdir -p "$WORK/run/$name"
  (cd "$WORK/run/$name" && exec env ${UNSET[@]+"${UNSET[@]}"} "$@") >"$WORK/logs/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# Polls every 10 ms, or back to back when WAIT_TIGHT=1: the start-to-ready timings poll without
# a pause (one curl per round, the rest bash builtins) so the figure is the server's time, not
# the poller's.
wait_http() { # url, pid, log name, timeout seconds, optional text the body must contain
  local url=$1 pid=$2 name=$3 deadline=$((EPOCHSECONDS + $4)) want=${5:-} body
  while :; do
    if body=$(curl -fsS --max-time 1 "$url" 2>/dev/null) && [[ $body == *"$want"* ]]; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$WORK/logs/$name.log" >&2 || true
      die "$name exited before $url answered"
    fi
    if [ "$EPOCHSECONDS" -ge "$deadline" ]; then
      tail -n 30 "$WORK/logs/$name.log" >&2 || true
      die "$name: no answer from $url within $4 s"
    fi
    [ "${WAIT_TIGHT:-0}" = 1 ] || sleep 0.01
  done
}

now_ns() { date +%s%N; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; } # calc FORMAT EXPRESSION

# Reads one number from the pretty JSON batata-bench writes (keys are unique in it).
jget() { sed -nE "s/^ *\"$2\": *([^,]*),?\$/\1/p" "$1" | head -n 1; }

# CPU time (user + system, ms) the given processes have used so far.
CLK_TCK=$(getconf CLK_TCK)
cpu_ms() {
  local t=0 p f
  for p in "$@"; do
    # Fields 14 and 15 of /proc/PID/stat; the name in field 2 ("(batata)") has no spaces.
    f=$(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null) || continue
    t=$((t + ${f% *} + ${f#* }))
  done
  echo $((t * 1000 / CLK_TCK))
}

# The processes serving the current workloads: their CPU time is charged to each run.
SERVER_PIDS=()
declare -A CMD CPU1K

# BENCH_PERF=1: the runs profiled (their targets are missed; BENCHMARKS.md quotes these files).
PERF_RUNS=" grpc-instance-register-1node-c64 config-publish-c256 grpc-instance-register-c64 config-get-c64 "
PERF_RUNS+=" grpc-config-get-c64 listener-fanout-10000 naming-fanout-1000 consul-kv-put-c1 consul-kv-put-c64 "
PERF_PID=
perf_start() { # run name
  PERF_PID=
  [ "${BENCH_PERF:-0}" = 1 ] && [[ $PERF_RUNS == *" $1 "* ]] && [ ${#SERVER_PIDS[@]} -gt 0 ] || return 0
  mkdir -p "$RES/perf"
  local pids
  pids=$(IFS=,; echo "${SERVER_PIDS[*]}")
  perf record -q -F 499 -p "$pids" -o "$WORK/perf-$1.data" 2>>"$WORK/logs/perf.log" &
  PERF_PID=$!
}
perf_stop() { # run name
  [ -n "$PERF_PID" ] || return 0
  kill -INT "$PERF_PID" 2>/dev/null || true
  wait "$PERF_PID" 2>/dev/null || true
  # Where the samples fall by thread, by binary (kernel, libc, batata), then the top symbols.
  local sort
  for sort in comm dso comm,dso,symbol; do
    echo "-- by $sort"
    perf report -i "$WORK/perf-$1.data" --stdio --no-children --sort "$sort" 2>/dev/null |
      grep -E '^ +[0-9.]+%' | head -n "$([ "$sort" = comm,dso,symbol ] && echo 40 || echo 6)" | cut -c1-160 | sed 's/ *$//'
  done >"$RES/perf/$1.txt" || true
  rm -f "$WORK/perf-$1.data"
}

bench() { # result name, then batata-bench arguments
  local name=$1 c0 c1 ok
  shift
  local args=("$@" --json "$RES/$name.json" ${SMOKE_ARGS[@]+"${SMOKE_ARGS[@]}"})
  CMD[$name]="batata-bench ${args[*]}"
  log "${CMD[$name]}"
  c0=$(cpu_ms ${SERVER_PIDS[@]+"${SERVER_PIDS[@]}"})
  perf_start "$name"
  "$BENCH_BIN" "${args[@]}" | tee "$WORK/logs/$name.txt" >&2
  perf_stop "$name"
  c1=$(cpu_ms ${SERVER_PIDS[@]+"${SERVER_PIDS[@]}"})
  ok=$(jget "$RES/$name.json" ok)
  # Server CPU per 1,000 successful requests, all server processes together. The warm-up's
  # requests are not counted but cost CPU too: the total is scaled by the measured share of the
  # run (measured / (warm-up + measured) seconds), which assumes an even request rate.
  if [ ${#SERVER_PIDS[@]} -gt 0 ] && [ -n "$ok" ] && [ "$ok" -gt 0 ] 2>/dev/null; then
    CPU1K[$name]=$(calc "%.1f" "($c1 - $c0) * $MEASURED_SHARE / ($ok / 1000)")
  fi
}

# The nodes of the running Batata deployment (HTTP ports): leader_port looks among them.
HTTP=()
metrics() { curl -fsS --max-time 5 "http://127.0.0.1:$1/nacos/metrics"; }
leader_port() {
  local p m
  for p in "${HTTP[@]}"; do
    m=$(metrics "$p" 2>/dev/null) || continue
    if grep -qx 'batata_raft_is_leader 1' <<<"$m"; then
      echo "$p"
      return 0
    fi
  done
  die "no node reports batata_raft_is_leader 1"
}
counters() { # port -> "fsyncs entries_synced"
  local m
  m=$(metrics "$1") || die "cannot read http://127.0.0.1:$1/nacos/metrics"
  awk '$1 == "batata_raft_log_fsyncs_total" { f = $2 } $1 == "batata_raft_log_entries_synced_total" { e = $2 }
       END { if (f == "" || e == "") exit 1; print f, e }' <<<"$m" || die "fsync counters missing on port $1"
}

# Samples the leader's replication lag (entries, the largest over its peers) every 100 ms into
# a file until killed.
sample_lag() { # port, file
  while :; do
    metrics "$1" 2>/dev/null | awk '$1 ~ /^batata_raft_replication_lag_entries/ { if ($2 > m) m = $2 } END { print m + 0 }' >>"$2"
    sleep 0.1
  done
}

declare -A EPF LAG
durable() { # like bench, also recording the entries per fsync and the replication lag on the leader
  local name=$1 lp fe f0 e0 f1 e1 sampler
  lp=$(leader_port)
  fe=$(counters "$lp")
  read -r f0 e0 <<<"$fe"
  : >"$WORK/lag-$name"
  sample_lag "$lp" "$WORK/lag-$name" &
  sampler=$!
  bench "$@"
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  if [ "${#HTTP[@]}" -gt 1 ]; then
    LAG[$name]=$(awk '{ s += $1; if ($1 > m) m = $1; n++ } END { if (n) printf "%.0f / %d", s / n, m; else print "n/a" }' "$WORK/lag-$name")
  fi
  fe=$(counters "$lp")
  read -r f1 e1 <<<"$fe"
  if [ "$(leader_port)" != "$lp" ]; then
    EPF[$name]="n/a (leader changed)"
  elif [ "$f1" -gt "$f0" ]; then
    EPF[$name]=$(calc "%.1f" "($e1 - $e0) / ($f1 - $f0)")
  else
    EPF[$name]="n/a (no fsync)"
  fi
  log "$name: ${EPF[$name]} entries per fsync on the leader (127.0.0.1:$lp)"
}

# --- build ------------------------------------------------------------------------------------
log "building release binaries"
cargo build --release --bins >&2
BATATA=$CARGO_TARGET_DIR/release/batata
BENCH_BIN=$CARGO_TARGET_DIR/release/batata-bench
for b in "$BATATA" "$BENCH_BIN"; do
  [ -x "$b" ] || die "$b is missing after the build"
done
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo "uncommitted")

# --- etcd binary: checked (and installed) now so a failure does not waste the Batata runs -----
ETCD_NOTE=
if [ "$SMOKE" = 1 ]; then
  ETCD_NOTE="skipped (BENCH_SMOKE)"
elif [ -n "${BENCH_SKIP_ETCD:-}" ]; then
  ETCD_NOTE="skipped (BENCH_SKIP_ETCD)"
else
  if ! command -v etcd >/dev/null; then
    # Debian's etcd-server package; on a systemd host it also enables its own etcd service on
    # localhost:2379, which does not collide with the ports used here.
    apt_install etcd-server
  fi
  ETCD=$(command -v etcd) || die "etcd is not installed"
  ETCD_VERSION=$("$ETCD" --version | awk '/^etcd Version:/ { print $3 }')
  etcd_help=$("$ETCD" --help 2>&1 || true)
  ETCD_FLAGS=()
  # 3.4 and 3.5 serve the JSON gateway by default; pass the switch where it exists anyway.
  if grep -q -- '--enable-grpc-gateway' <<<"$etcd_help"; then ETCD_FLAGS+=(--enable-grpc-gateway=true); fi
  if grep -q -- '--logger' <<<"$etcd_help"; then ETCD_FLAGS+=(--logger=zap); fi
  if grep -q -- '--log-level' <<<"$etcd_help"; then ETCD_FLAGS+=(--log-level=warn); fi
fi

# --- machine ----------------------------------------------------------------------------------
log "measuring fsync latency in $DATA"
FSYNC_CMD="dd if=/dev/zero of=$DATA/fsync-probe bs=4k count=500 oflag=dsync"
dd_out=$(LC_ALL=C dd if=/dev/zero of="$DATA/fsync-probe" bs=4k count=500 oflag=dsync 2>&1)
rm -f "$DATA/fsync-probe"
dd_secs=$(sed -nE 's/.* copied, ([0-9.eE+-]+) s.*/\1/p' <<<"$dd_out")
[ -n "$dd_secs" ] || die "could not parse dd output: $dd_out"
FSYNC_MS=$(calc "%.3f" "$dd_secs * 1000 / 500")
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GIB=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
FS_TYPE=$(stat -f -c %T "$DATA")
MACHINE="$(nproc) CPUs (${CPU_MODEL:-unknown model}), $MEM_GIB GiB RAM, Linux $(uname -r), data on $FS_TYPE, fsync $FSYNC_MS ms"
log "$MACHINE"

# --- standalone node: start-to-ready and idle RSS --------------------------------------------
S_HTTP=$((BASE + 40))
check_ports "$S_HTTP" $((S_HTTP + 1000)) $((BASE + 42)) $((BASE + 43)) $((BASE + 44))
# No cluster settings: its ports (all of them, so none collides), data dir and loopback binds.
S_ENV=("BATATA_SERVER_PORT=$S_HTTP" "BATATA_SDK_PORT=$((S_HTTP + 1000))" "BATATA_CLUSTER_PORT=$((BASE + 42))"
  "BATATA_CONSOLE_PORT=$((BASE + 43))" "BATATA_CONSUL_PORT=$((BASE + 44))" "BATATA_DATA_DIR=$DATA/standalone"
  BATATA_BIND_ADDRESS=127.0.0.1 BATATA_CLUSTER_BIND_ADDRESS=127.0.0.1 BATATA_AUTH_ENABLED=false)
log "standalone node: time to ready"
t0=$(now_ns)
spawn standalone "${S_ENV[@]}" RUST_LOG="${BENCH_RUST_LOG:-warn}" "$BATATA"
S_PID=$LAST_PID
WAIT_TIGHT=1 wait_http "http://127.0.0.1:$S_HTTP/nacos/v1/console/health/readiness" "$S_PID" standalone 60
READY_MS=$((($(now_ns) - t0) / 1000000))
sleep 5
RSS_MIB=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$S_PID/status")
log "standalone: ready in $READY_MS ms, idle RSS $RSS_MIB MiB"
HTTP=("$S_HTTP")
SERVER_PIDS=("$S_PID")
for c in "${LEVELS[@]}"; do
  durable "grpc-instance-register-1node-c$c" --workload grpc-instance-register --addr "127.0.0.1:$S_HTTP" \
    --concurrency "$c" --duration "$DURATION"
done
stop_pids "$S_PID"
SERVER_PIDS=()

# --- footprint: RSS with 100,000 instances and 10,000 configs; restart with 1,000,000 configs --
# A fresh standalone node each; footprint-load publishes the configs over HTTP, batch-registers
# the instances over gRPC and keeps its connections (so its ephemeral instances) while the RSS
# is read.
spawn footprint "${S_ENV[@]/#BATATA_DATA_DIR=*/BATATA_DATA_DIR=$DATA/footprint}" RUST_LOG="${BENCH_RUST_LOG:-warn}" "$BATATA"
F_PID=$LAST_PID
wait_http "http://127.0.0.1:$S_HTTP/nacos/v1/console/health/readiness" "$F_PID" footprint 60
FOOT_CMD="batata-bench --workload footprint-load --addr 127.0.0.1:$S_HTTP --keys 10000 --instances 100000 --concurrency 16 --duration 30 ${SMOKE_ARGS[*]}"
log "$FOOT_CMD"
rm -f "$RES/footprint.json"
"$BENCH_BIN" --workload footprint-load --addr "127.0.0.1:$S_HTTP" --keys 10000 --instances 100000 --concurrency 16 \
  --duration 30 --json "$RES/footprint.json" ${SMOKE_ARGS[@]+"${SMOKE_ARGS[@]}"} >"$WORK/logs/footprint.txt" 2>&1 &
FOOT_BENCH=$!
for _ in $(seq 1 6000); do [ -s "$RES/footprint.json" ] && break; kill -0 "$FOOT_BENCH" 2>/dev/null || break; sleep 0.1; done
[ -s "$RES/footprint.json" ] || die "footprint-load did not finish loading: $(tail -n 5 "$WORK/logs/footprint.txt")"
sleep 5
LOADED_RSS_MIB=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$F_PID/status")
FOOT_LOADED=$(cat "$RES/footprint.json")
wait "$FOOT_BENCH" || die "footprint-load failed: $(tail -n 5 "$WORK/logs/footprint.txt")"
log "loaded ($FOOT_LOADED): RSS $LOADED_RSS_MIB MiB"
stop_pids "$F_PID"

R_ENV=("${S_ENV[@]/#BATATA_DATA_DIR=*/BATATA_DATA_DIR=$DATA/restart}")
spawn restart "${R_ENV[@]}" RUST_LOG="${BENCH_RUST_LOG:-warn}" "$BATATA"
R_PID=$LAST_PID
wait_http "http://127.0.0.1:$S_HTTP/nacos/v1/console/health/readiness" "$R_PID" restart 60
RESTART_KEYS=1000000
[ "$SMOKE" = 1 ] && RESTART_KEYS=10
log "restart: loading $RESTART_KEYS configs"
"$BENCH_BIN" --workload footprint-load --addr "127.0.0.1:$S_HTTP" --keys "$RESTART_KEYS" --instances 0 --concurrency 1 \
  --duration 1 >"$WORK/logs/restart-load.txt" 2>&1 || die "loading the restart node failed: $(tail -n 5 "$WORK/logs/restart-load.txt")"
stop_pids "$R_PID"
RESTART_DATA=$(du -sh "$DATA/restart" | cut -f1)
t0=$(now_ns)
spawn restart2 "${R_ENV[@]}" RUST_LOG="${BENCH_RUST_LOG:-warn}" "$BATATA"
R_PID=$LAST_PID
WAIT_TIGHT=1 wait_http "http://127.0.0.1:$S_HTTP/nacos/v1/console/health/readiness" "$R_PID" restart2 600
RESTART_MS=$((($(now_ns) - t0) / 1000000))
RESTART_RSS_MIB=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$R_PID/status")
log "restart with $RESTART_KEYS configs ($RESTART_DATA on disk): ready in $RESTART_MS ms, RSS $RESTART_RSS_MIB MiB"
stop_pids "$R_PID"

# --- 3-node cluster ---------------------------------------------------------------------------
HTTP=() ADDR_ARGS=()
CONF=$WORK/cluster.conf
: >"$CONF"
for i in 1 2 3; do
  h=$((BASE + 10 * i))
  HTTP+=("$h")
  ADDR_ARGS+=(--addr "127.0.0.1:$h")
  check_ports "$h" $((h + 1000)) $((h + 2))
  echo "127.0.0.1:$h raft_port=$((h + 2))" >>"$CONF"
done
log "starting a 3-node Batata cluster (HTTP ports ${HTTP[*]})"
NODE_PIDS=()
for i in 1 2 3; do
  h=${HTTP[i - 1]}
  # The SDK port is the HTTP port + 1000: Nacos clients (and batata-bench) derive it that way.
  spawn "node$i" BATATA_SERVER_PORT="$h" BATATA_SDK_PORT=$((h + 1000)) BATATA_CLUSTER_PORT=$((h + 2)) \
    BATATA_CONSUL_PORT=0 BATATA_DEPLOYMENT_TYPE=server BATATA_DATA_DIR="$DATA/n$i" BATATA_AUTH_ENABLED=false \
    BATATA_SERVER_IP=127.0.0.1 BATATA_BIND_ADDRESS=127.0.0.1 BATATA_CLUSTER_BIND_ADDRESS=127.0.0.1 \
    BATATA_CLUSTER_SECRET="$SECRET" BATATA_CLUSTER_LOOKUP_TYPE=file BATATA_CLUSTER_CONF="$CONF" \
    RUST_LOG="${BENCH_RUST_LOG:-warn}" "$BATATA"
  NODE_PIDS+=("$LAST_PID")
done
for i in 1 2 3; do
  wait_http "http://127.0.0.1:${HTTP[i - 1]}/nacos/v1/console/health/readiness" "${NODE_PIDS[i - 1]}" "node$i" 120
done
SERVER_PIDS=("${NODE_PIDS[@]}")

for c in "${LEVELS[@]}"; do
  durable "config-publish-c$c" --workload config-publish "${ADDR_ARGS[@]}" --concurrency "$c" --duration "$DURATION"
done
for c in "${LEVELS[@]}"; do
  durable "grpc-instance-register-c$c" --workload grpc-instance-register "${ADDR_ARGS[@]}" --concurrency "$c" \
    --duration "$DURATION"
done

GET_PORT=${HTTP[0]}
GET_ROLE=follower
[ "$(leader_port)" = "$GET_PORT" ] && GET_ROLE=leader
bench config-get-c64 --workload config-get --addr "127.0.0.1:$GET_PORT" --concurrency 64 --duration "$DURATION"
bench grpc-config-get-c64 --workload grpc-config-get --addr "127.0.0.1:$GET_PORT" --concurrency 64 --duration "$DURATION"
# Listener fan-out: listeners spread over the 3 nodes, the publish goes through node 1.
for l in "${FANOUT[@]}"; do
  bench "listener-fanout-$l" --workload listener-fanout "${ADDR_ARGS[@]}" --listeners "$l" --duration 5
done
# Subscriber fan-out: subscribers spread over the 3 nodes, the registering connection on node 1.
for l in "${FANOUT[@]}"; do
  bench "naming-fanout-$l" --workload naming-fanout "${ADDR_ARGS[@]}" --listeners "$l" --duration 5
done
# Consul KV: durable PUTs spread over the 3 nodes (compared with etcd below), GETs on one node
# (default consistency: a follower confirms the leader's commit index first), and the wake-up of
# 1,000 blocking queries spread over the nodes when the key they watch is written.
for c in "${LEVELS[@]}"; do
  durable "consul-kv-put-c$c" --workload consul-kv-put "${ADDR_ARGS[@]}" --concurrency "$c" --duration "$DURATION"
done
bench consul-kv-get-c64 --workload consul-kv-get --addr "127.0.0.1:$GET_PORT" --concurrency 64 --duration "$DURATION"
bench consul-watch-fanout-1000 --workload consul-watch-fanout "${ADDR_ARGS[@]}" --listeners 1000 --duration 5
stop_pids "${NODE_PIDS[@]}"
SERVER_PIDS=()

# --- etcd -------------------------------------------------------------------------------------
if [ -z "$ETCD_NOTE" ]; then
  CLIENT=() E_ADDR_ARGS=() INITIAL=
  for i in 1 2 3; do
    cp=$((BASE + 100 + 10 * i))
    CLIENT+=("$cp")
    E_ADDR_ARGS+=(--addr "127.0.0.1:$cp")
    check_ports "$cp" $((cp + 1))
    INITIAL+="${INITIAL:+,}e$i=http://127.0.0.1:$((cp + 1))"
  done
  log "starting a 3-member etcd $ETCD_VERSION cluster (client ports ${CLIENT[*]})"
  ETCD_PIDS=()
  for i in 1 2 3; do
    cp=${CLIENT[i - 1]}
    spawn "etcd$i" "$ETCD" --name "e$i" --data-dir "$DATA/etcd$i" \
      --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
      --listen-peer-urls "http://127.0.0.1:$((cp + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((cp + 1))" \
      --initial-cluster "$INITIAL" --initial-cluster-state new --initial-cluster-token batata-bench \
      ${ETCD_FLAGS[@]+"${ETCD_FLAGS[@]}"}
    ETCD_PIDS+=("$LAST_PID")
  done
  for i in 1 2 3; do
    wait_http "http://127.0.0.1:${CLIENT[i - 1]}/health" "${ETCD_PIDS[i - 1]}" "etcd$i" 60 '"health":"true"'
  done
  SERVER_PIDS=("${ETCD_PIDS[@]}")
  for c in "${LEVELS[@]}"; do
    bench "etcd-put-c$c" --workload etcd-put "${E_ADDR_ARGS[@]}" --concurrency "$c" --duration "$DURATION"
  done
  stop_pids "${ETCD_PIDS[@]}"
  SERVER_PIDS=()
fi

# --- report -----------------------------------------------------------------------------------
row() { # name, system label
  local f=$RES/$1.json
  # shellcheck disable=SC2016 # the backticks are Markdown code spans
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | `%s` |\n' "$(jget "$f" workload | tr -d '"')" "$2" \
    "$(jget "$f" concurrency)" "$(calc "%.0f" "$(jget "$f" throughput_rps)")" \
    "$(calc "%.2f" "$(jget "$f" p50)")" "$(calc "%.2f" "$(jget "$f" p99)")" "$(calc "%.2f" "$(jget "$f" p999)")" \
    "$(calc "%.2f" "$(jget "$f" max)")" "$(jget "$f" total)" "${EPF[$1]:--}" "${LAG[$1]:--}" "${CPU1K[$1]:--}" "${CMD[$1]}"
}
REPORT=$WORK/report.md
{
  echo "## Batata benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Machine: $MACHINE. Commit: $COMMIT.$([ "$SMOKE" = 1 ] && echo " SMOKE RUN: figures are not meaningful.")"
  echo
  echo "| Figure | Value | Command |"
  echo "|---|---|---|"
  echo "| Disk fsync latency | $FSYNC_MS ms per 4 KiB write | \`$FSYNC_CMD\` (total time / 500) |"
  echo "| Standalone start to ready | $READY_MS ms | \`${S_ENV[*]} batata\`, polling \`GET /nacos/v1/console/health/readiness\` back to back (one curl per round) |"
  echo "| Standalone idle RSS | $RSS_MIB MiB | VmRSS in \`/proc/PID/status\` 5 s after ready |"
  echo "| Standalone RSS with 100,000 instances and 10,000 configs | $LOADED_RSS_MIB MiB | VmRSS 5 s after \`$FOOT_CMD\` loaded them ($FOOT_LOADED) |"
  echo "| Standalone restart to ready with $RESTART_KEYS configs ($RESTART_DATA on disk) | $RESTART_MS ms (then RSS $RESTART_RSS_MIB MiB) | SIGTERM after \`footprint-load --keys $RESTART_KEYS --instances 0\`, restart, poll readiness back to back |"
  if [ -z "$ETCD_NOTE" ]; then
    for c in "${LEVELS[@]}"; do
      b=$(jget "$RES/config-publish-c$c.json" throughput_rps)
      e=$(jget "$RES/etcd-put-c$c.json" throughput_rps)
      ratio=$(awk "BEGIN { if ($e > 0) printf \"%.2f\", $b / $e; else print \"n/a\" }")
      echo "| Batata/etcd write throughput ratio, concurrency $c | $ratio | config-publish-c$c / etcd-put-c$c below |"
    done
    for c in "${LEVELS[@]}"; do
      b=$(jget "$RES/consul-kv-put-c$c.json" throughput_rps)
      e=$(jget "$RES/etcd-put-c$c.json" throughput_rps)
      ratio=$(awk "BEGIN { if ($e > 0) printf \"%.2f\", $b / $e; else print \"n/a\" }")
      echo "| Batata Consul KV/etcd write throughput ratio, concurrency $c | $ratio | consul-kv-put-c$c / etcd-put-c$c below |"
    done
  else
    echo "| Batata/etcd write throughput ratio | $ETCD_NOTE | |"
  fi
  echo
  if [ "$SMOKE" = 1 ]; then window="1 s without warm-up (--smoke)"; else window="$DURATION s after a 2 s warm-up"; fi
  echo "Throughput is successful requests per second over $window; latencies in ms;"
  echo "entries/fsync is the leader's \`batata_raft_log_entries_synced_total\` / \`batata_raft_log_fsyncs_total\` increase during the run;"
  echo "replication lag is the leader's largest \`batata_raft_replication_lag_entries\` over its peers, sampled every 100 ms (mean / max);"
  echo "CPU is the server processes' user + system time per 1,000 successful requests (all nodes together; the warm-up's share deducted)."
  echo
  echo "| Workload | Target | Clients | req/s | p50 | p99 | p99.9 | max | Errors | Entries/fsync | Repl. lag mean / max | CPU ms / 1k req | Command |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for c in "${LEVELS[@]}"; do row "config-publish-c$c" "Batata, 3 nodes"; done
  for c in "${LEVELS[@]}"; do row "grpc-instance-register-1node-c$c" "Batata, 1 node (standalone)"; done
  for c in "${LEVELS[@]}"; do row "grpc-instance-register-c$c" "Batata, 3 nodes"; done
  for c in "${LEVELS[@]}"; do row "consul-kv-put-c$c" "Batata, 3 nodes"; done
  row config-get-c64 "Batata, 1 node ($GET_ROLE)"
  row grpc-config-get-c64 "Batata, 1 node ($GET_ROLE)"
  row consul-kv-get-c64 "Batata, 1 node ($GET_ROLE)"
  if [ -z "$ETCD_NOTE" ]; then
    for c in "${LEVELS[@]}"; do row "etcd-put-c$c" "etcd $ETCD_VERSION, 3 members"; done
  fi
  echo
  echo "Fan-outs: gRPC connections spread over the 3 nodes. Listener fan-out: each listens to one config;"
  echo "each round publishes it through node 1 and waits until every listener has its change push. Subscriber"
  echo "(naming) fan-out: each subscribes to one service; each round a connection on node 1 registers its"
  echo "instance at the other of two addresses and waits until every subscriber has a push showing it. Consul"
  echo "watch fan-out: 1,000 blocking KV queries (one HTTP connection each); each round writes the key through"
  echo "node 1 and waits until every query has returned with a higher index. 5 rounds."
  echo
  echo "| Fan-out | Connections | All notified, median round (ms) | Worst round (ms) | Per connection p50 (ms) | p99 (ms) | Connect + listen/subscribe (s) | Command |"
  echo "|---|---|---|---|---|---|---|---|"
  for name in "${FANOUT[@]/#/listener-fanout-}" "${FANOUT[@]/#/naming-fanout-}" consul-watch-fanout-1000; do
    f=$RES/$name.json
    # shellcheck disable=SC2016 # the backticks are Markdown code spans
    printf '| %s | %s | %s | %s | %s | %s | %s | `%s` |\n' "$(jget "$f" workload | tr -d '"')" \
      "$(jget "$f" listeners)$(jget "$f" subscribers)$(jget "$f" watchers)" "$(calc "%.1f" "$(jget "$f" median)")" \
      "$(calc "%.1f" "$(jget "$f" max)")" "$(calc "%.1f" "$(jget "$f" p50)")" "$(calc "%.1f" "$(jget "$f" p99)")" \
      "$(calc "%.1f" "$(jget "$f" connect_and_listen_s)$(jget "$f" connect_and_subscribe_s)$(jget "$f" connect_and_watch_s)")" "${CMD[$name]}"
  done
  echo
  if [ -d "$RES/perf" ]; then
    echo "Profiles (BENCH_PERF=1; perf record -F 499 of every server process during the run; share of samples by thread, by binary, then the top 40 symbols):"
    echo
    for f in "$RES"/perf/*.txt; do
      echo "#### $(basename "$f" .txt)"
      echo
      echo '```'
      cat "$f"
      echo '```'
      echo
    done
  fi
} >"$REPORT"
cat "$REPORT"
cat "$REPORT" >>"$OUT"
log "report appended to $OUT; per-run JSON in $RES"
