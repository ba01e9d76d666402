#!/usr/bin/env bash
# bench/run.sh: the relay benchmarks of issue 6, end to end.
#
#   bench/run.sh            # full run (about 5 minutes of measuring); fills BENCHMARKS.md
#   bench/run.sh --quick    # about 1 minute smoke run; writes bench/results/<date>-quick.json only
#   options: --no-build (use the binaries already in the build dir), --write-md (also let a quick
#            run rewrite the table), BENCH_BUILD_DIR=<dir> (default build-bench)
#
# It builds the Release binaries (own build dir, Ninja, ccache when present), then measures, with
# the server pinned to core 1 and the generator to core 0 (taskset; both on every core when the
# machine has one):
#   * publish at 1 and 64 connections on the reference server (bench/reference_server.cpp),
#     magnetar --storage memory and magnetar --storage rocksdb --durability fsync, interleaved
#     (the three run moments apart at each concurrency), in rounds; each figure is its best round;
#   * on both magnetar engines: bulk (100 messages per request), poll wake latency,
#     publish -> WebSocket delivery at 10,000 msgs/s, fan-out to 1,000 subscribers;
#   * magnetar (memory, fresh) holding long-poll waiters and idle WebSockets: server RSS;
#   * allocations per publish and per fan-out delivery (LD_PRELOAD bench/malloc_counter.cc).
# Results: bench/results/<date>.json (every figure, the machine, the command) and the table
# between the magnetar-bench markers in BENCHMARKS.md (the rest of the file is kept).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build-bench}
quick=0
do_build=1
write_md=1
for arg in "$@"; do
  case $arg in
    --quick) quick=1; write_md=0 ;;
    --no-build) do_build=0 ;;
    --write-md) write_md=1 ;;
    *) echo "usage: bench/run.sh [--quick] [--no-build] [--write-md]" >&2; exit 2 ;;
  esac
done
[[ $quick == 1 && " $* " == *" --write-md "* ]] && write_md=1
command_line="bench/run.sh${*:+ $*}"

# Tens of thousands of sockets: as many descriptors as the hard limit allows (not by hand).
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fd_limit=$(ulimit -n)

# --- build ---------------------------------------------------------------------------------------
if [[ $do_build == 1 ]]; then
  "$root/scripts/deps.sh"  # installs what is missing (idempotent, fast when nothing is)
  export CCACHE_BASEDIR=$root CCACHE_NOHASHDIR=1
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" >/dev/null
  ninja -C "$build" -j"$(nproc)" magnetar magnetar-bench reference_server malloc_counter
fi
magnetar=$build/src/server/magnetar
bench=$build/bench/magnetar-bench
reference=$build/bench/reference_server
counter=$build/bench/libmalloc_counter.so
for bin in "$magnetar" "$bench" "$reference" "$counter"; do
  [[ -e $bin ]] || { echo "missing $bin (build first)" >&2; exit 1; }
done
build_type=$(grep -E '^CMAKE_BUILD_TYPE:' "$build/CMakeCache.txt" | cut -d= -f2)

# --- pinning -------------------------------------------------------------------------------------
server_pin=()
gen_pin=()
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
  server_pin=(taskset -c 1)
  gen_pin=(taskset -c 0)
fi
server_threads=1  # one core for the server: one I/O thread, like the reference

# --- durations -----------------------------------------------------------------------------------
if [[ $quick == 1 ]]; then
  warmup=0.5; duration=2; rounds=1; fanout_subs=200; waiters=1000; idle_ws=2000; hold=2
else
  warmup=2; duration=8; rounds=2; fanout_subs=1000; waiters=10000; idle_ws=50000; hold=5
fi
# The descriptor limit caps the connections scenario (each socket is a descriptor in the server
# and in the generator); the figures per connection then give the projection to the target.
max_conns=$((fd_limit - 200))
if ((waiters + idle_ws > max_conns)); then
  waiters=$((max_conns / 6))
  idle_ws=$((max_conns - waiters))
  echo "note: descriptor limit $fd_limit: holding $waiters waiters + $idle_ws WebSockets" >&2
fi
source_addresses=$(((waiters + idle_ws) / 20000 + 1))

work=$(mktemp -d "${TMPDIR:-/tmp}/magnetar-bench.XXXXXX")
data_root=$root/bench-data/run-$$  # on the real disk: fsync must mean something
mkdir -p "$data_root" "$root/bench/results"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work" "$data_root"
}
trap cleanup EXIT

password="bench-$RANDOM$RANDOM-password"
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
declare -A pid_of url_of

# start <label> <command...>: starts a server pinned to the server core, waits for its
# "listening on http://…" line, records its pid and URL under <label>.
start() {
  local label=$1
  shift
  "${server_pin[@]}" "$@" >"$work/$label.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  local url=
  for _ in $(seq 600); do
    url=$(grep -o 'listening on http://[0-9.:]*' "$work/$label.log" | head -1 |
          sed 's/listening on //') || true
    if [[ -n $url ]]; then
      pid_of[$label]=$pid
      url_of[$label]=$url
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "$label did not start:" >&2
  cat "$work/$label.log" >&2
  exit 1
}

stop() {  # stop <label>...
  local label
  for label in "$@"; do
    kill "${pid_of[$label]}" 2>/dev/null || true
    wait "${pid_of[$label]}" 2>/dev/null || true
  done
}

start_magnetar() {  # start_magnetar <label> <storage args...>
  local label=$1
  shift
  start "$label" env -i PATH="$PATH" HOME="${HOME:-/tmp}" ${LD_PRELOAD_COUNTER:+LD_PRELOAD=$LD_PRELOAD_COUNTER} \
    ${MALLOC_COUNTER_OUT:+MALLOC_COUNTER_OUT=$MALLOC_COUNTER_OUT} \
    PULSAR_JWT_SECRET_KEY="$secret" PULSAR_BOOTSTRAP_ADMIN_USERNAME=bench \
    PULSAR_BOOTSTRAP_ADMIN_PASSWORD="$password" \
    "$magnetar" serve --host 127.0.0.1 --port 0 --pulsar-port 0 --eftl-port 0 --threads "$server_threads" \
    --data-dir "$data_root/$label" --log-level warning \
    --rate-limit-login 0 --rate-limit-refresh 0 --rate-limit-publish 0 --rate-limit-bulk 0 \
    --ws-max-per-user 1000000 --poll-max-per-user 1000000 --access-token-expire-minutes 120 "$@"
}

results=$work/runs.jsonl
: >"$results"
# measure <server label> <scenario label> <magnetar-bench args...>
measure() {
  local server=$1 label=$2
  shift 2
  local out=$work/$server-$label.json
  echo "== $server / $label (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  if ! "${gen_pin[@]}" "$bench" --url "${url_of[$server]}" --user bench --password "$password" \
      --server-pid "${pid_of[$server]}" --warmup "$warmup" --duration "$duration" --json "$@" \
      >"$out" 2>"$work/$server-$label.err"; then
    echo "   (run reported a failure: $(head -c 300 "$out" "$work/$server-$label.err" | tr '\n' ' '))" >&2
  fi
  [[ -s $out ]] || echo '{"ok":false,"error":"no output"}' >"$out"
  python3 - "$server" "$label" "$out" >>"$results" <<'EOF'
import json, sys
server, label, path = sys.argv[1:4]
try:
    data = json.load(open(path))
except Exception as e:
    data = {"ok": False, "error": f"unreadable output: {e}"}
load1 = float(open("/proc/loadavg").read().split()[0])
print(json.dumps({"server": server, "label": label, "load1_after": load1, "result": data}))
EOF
}

broker_runs() {
  local server=$1
  measure "$server" bulk-c4 --scenario bulk --connections 4 --batch 100
  measure "$server" poll --scenario poll --connections 1
  measure "$server" e2e-10k --scenario e2e --connections 32 --rate 10000 --subscribers 1
  measure "$server" fanout --scenario fanout --subscribers "$fanout_subs"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)

start reference "$reference" --host 127.0.0.1 --port 0 --threads "$server_threads"
start_magnetar memory --storage memory
start_magnetar rocksdb --storage rocksdb --durability fsync

# --- publish, interleaved: each magnetar figure is taken right after the reference's at the same
# concurrency, in every round; the report uses the best round of each (the least disturbed). -----
for round in $(seq "$rounds"); do
  for c in 1 64; do
    for server in reference memory rocksdb; do
      measure "$server" "publish-c$c-r$round" --scenario publish --connections "$c"
    done
  done
done

# --- the broker scenarios ------------------------------------------------------------------------
broker_runs memory
broker_runs rocksdb
stop reference memory rocksdb

# --- connections: a fresh server, so its baseline RSS holds no messages ----------------------------
start_magnetar connections --storage memory
measure connections hold --scenario connections --waiters "$waiters" --idle-ws "$idle_ws" \
  --source-addresses "$source_addresses" --duration "$hold"
stop connections

# --- allocations per publish / per delivery ------------------------------------------------------
export LD_PRELOAD_COUNTER=$counter MALLOC_COUNTER_OUT=$work/allocs-publish.txt
start_magnetar allocs-publish --storage memory
pid_of[allocs]=${pid_of[allocs-publish]}
url_of[allocs]=${url_of[allocs-publish]}
measure allocs publish-c1 --scenario publish --connections 1 --mark-signal 12
stop allocs-publish
export MALLOC_COUNTER_OUT=$work/allocs-fanout.txt
start_magnetar allocs-fanout --storage memory
pid_of[allocs]=${pid_of[allocs-fanout]}
url_of[allocs]=${url_of[allocs-fanout]}
measure allocs fanout --scenario fanout --subscribers "$fanout_subs" --mark-signal 12
stop allocs-fanout
unset LD_PRELOAD_COUNTER MALLOC_COUNTER_OUT

elapsed=$(($(date +%s) - started))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
stamp=$(date -u +%Y-%m-%d-%H%M)
suffix=$([[ $quick == 1 ]] && echo "-quick" || true)
out_json=$root/bench/results/$stamp$suffix.json

python3 "$root/bench/report.py" \
  --runs "$results" --allocs-publish "$work/allocs-publish.txt" \
  --allocs-fanout "$work/allocs-fanout.txt" --out "$out_json" \
  --command "$command_line" --build-type "$build_type" --quick "$quick" \
  --load-before "$load_before" --load-after "$load_after" --elapsed "$elapsed" \
  --fd-limit "$fd_limit" --pinning "${server_pin[*]:-none} / ${gen_pin[*]:-none}" \
  $([[ $write_md == 1 ]] && echo --markdown "$root/BENCHMARKS.md")
echo "results: $out_json (measuring took ${elapsed}s)"
