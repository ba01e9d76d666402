#!/usr/bin/env bash
# bench/run.sh: the relay benchmarks of issue 6, end to end.
#
#   bench/run.sh            # full run: about 5 minutes of measuring; fills BENCHMARKS.md
#   bench/run.sh --quick    # about 1-2 minutes, to check that everything works; writes
#                           # bench/results/<date>-quick.json (and BENCHMARKS.md with --write-md)
#   options: --no-build (use the binaries already in the build dir), --write-md / --no-md
#   environment: BENCH_BUILD_DIR=<dir> (default build-bench), BENCH_BUILD_TYPE=<CMake build type>
#                (default RelWithDebInfo, the flavour scripts/build.sh release builds, so the
#                shared compiler cache already holds it; -O2 with symbols for the profile)
#
# On a fresh machine it installs what is missing (scripts/deps.sh) and builds the four binaries
# it needs (Ninja, ccache). Then, with the server pinned to core 1 and the generator to core 0
# (taskset; no pinning on a one-core machine), it measures:
#   * publish at 1 and 64 connections on the reference server (bench/reference_server.cpp),
#     magnetar --storage memory and magnetar --storage rocksdb --durability fsync, interleaved
#     (the three run moments apart at each concurrency), in rounds; each figure is its best round;
#   * on both magnetar engines: bulk (100 messages per request), poll wake latency,
#     publish -> WebSocket delivery at 10,000 msgs/s (open loop), fan-out to 1,000 subscribers;
#   * eFTL (bench/eftl_run.sh): publish with QoS acks; fan-out with 0 / 1,000 / 10,000
#     non-matching subscriptions beside the matching ones;
#   * the Pulsar binary protocol (magnetar-pulsar-bench) and the Pulsar WebSocket API
#     (magnetar-bench pulsar-ws-*): produce, consume, produce -> consume latency (memory engine);
#   * the redis engine (issue 8): publish at 1 and 64 connections on one node, 64 + 64 on two
#     nodes of one Redis, fan-out on one node and from one node to subscribers on the other;
#   * magnetar (memory, fresh) holding 10,000 long-poll waiters and 50,000 idle WebSockets, or as
#     many as the descriptor limit allows: server RSS;
#   * allocations per fan-out delivery (LD_PRELOAD bench/malloc_counter.so);
#   * bench/profile.sh: the publish path profile and allocations per publish.
# Results: bench/results/<date>.json (every figure, the machine, the command) and the generated
# section between the magnetar-bench markers in BENCHMARKS.md (the rest of the file is kept).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build-bench}
build_type=${BENCH_BUILD_TYPE:-RelWithDebInfo}
quick=0
do_build=1
write_md=
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --no-build) do_build=0 ;;
    --write-md) write_md=1 ;;
    --no-md) write_md=0 ;;
    *) echo "usage: bench/run.sh [--quick] [--no-build] [--write-md|--no-md]" >&2; exit 2 ;;
  esac
done
[[ -n $write_md ]] || write_md=$((1 - quick))  # a quick run leaves BENCHMARKS.md alone
command_line="bench/run.sh${*:+ $*}"
cd "$root"

# Tens of thousands of sockets: as many descriptors as allowed (raised here, not by hand). The
# hard limit can only be raised with privileges; without them the soft limit goes up to it.
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fd_limit=$(ulimit -n)

# --- build ---------------------------------------------------------------------------------------
if [[ $do_build == 1 ]]; then
  "$root/scripts/deps.sh"  # installs what is missing (idempotent, fast when nothing is)
  # The same compiler cache settings as scripts/build.sh: relative paths, so the objects of any
  # checkout and build directory with the same flags are cache hits.
  export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}" CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
  if [[ ! -f $build/build.ninja ]] ||
     ! grep -q "^CMAKE_BUILD_TYPE:STRING=$build_type\$" "$build/CMakeCache.txt"; then
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" >/dev/null
  fi
  ninja -C "$build" magnetar magnetar-bench magnetar-pulsar-bench reference_server malloc_counter eftl-bench
fi
magnetar=$build/src/server/magnetar
bench=$build/bench/magnetar-bench
reference=$build/bench/reference_server
counter=$build/bench/libmalloc_counter.so
pulsar_bench=$build/bench/magnetar-pulsar-bench
for bin in "$magnetar" "$bench" "$reference" "$counter" "$pulsar_bench"; do
  [[ -e $bin ]] || { echo "missing $bin (build first)" >&2; exit 1; }
done
build_type=$(grep -E '^CMAKE_BUILD_TYPE:' "$build/CMakeCache.txt" | cut -d= -f2)
export BENCH_BUILD_DIR=$build  # for bench/profile.sh

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
  warmup=0.5; duration=2; rounds=1; fanout_subs=1000; waiters=1000; idle_ws=2000; hold=2
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
    "$magnetar" serve --host 127.0.0.1 --port 0 --pulsar-port "${PULSAR_PORT:-0}" --eftl-port 0 --pulsar-ws-port 0 \
    --threads "$server_threads" \
    --data-dir "$data_root/$label" --log-level warning \
    --rate-limits off --ws-max-per-user 1000000 --poll-max-per-user 1000000 \
    --access-token-expire-minutes 120 "$@"
}

# login <label>: one password login per server (each is a deliberately slow Argon2 check on the
# server); every run then uses the token.
declare -A token_of
login() {
  token_of[$1]=$("$bench" --url "${url_of[$1]}" --user bench --password "$password" --login-only)
}

results=$work/runs.jsonl
: >"$results"
# measure <server label> <scenario label> <magnetar-bench args...>
measure() {
  local server=$1 label=$2
  shift 2
  local out=$work/$server-$label.json
  echo "== $server / $label (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  if ! "${gen_pin[@]}" "$bench" --url "${url_of[$server]}" --token "${token_of[$server]}" \
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

# measure_pulsar <server label> <pulsar port> <scenario label> <magnetar-pulsar-bench args...>:
# the Pulsar binary protocol through the C++ client (bench/pulsar_bench.cc), one JSON line.
measure_pulsar() {
  local server=$1 port=$2 label=$3
  shift 3
  local out=$work/$server-$label.json
  echo "== $server / $label (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  if ! "${gen_pin[@]}" "$pulsar_bench" --service-url "pulsar://127.0.0.1:$port" \
      --token "${token_of[$server]}" "$@" >"$out" 2>"$work/$server-$label.err"; then
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

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

broker_runs() {
  local server=$1
  # 16 requests in flight: on the fsync engine each waits for its group's sync, so fewer would
  # measure the disk's sync latency instead of the server.
  measure "$server" bulk-c16 --scenario bulk --connections 16 --batch 100
  measure "$server" poll --scenario poll --connections 1
  measure "$server" e2e-10k --scenario e2e --connections 32 --rate 10000 --subscribers 1
  measure "$server" fanout --scenario fanout --subscribers "$fanout_subs"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)

start reference "$reference" --host 127.0.0.1 --port 0 --threads "$server_threads"
start_magnetar memory --storage memory
start_magnetar rocksdb --storage rocksdb --durability fsync
for server in reference memory rocksdb; do login "$server"; done

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

# --- redis (issue 8): 1 and 2 magnetar nodes on one Redis (AOF, appendfsync always: the durable
# setting of docs/cluster.md). The nodes share the server core; Redis is not pinned (it stands
# for another machine). Five runs, about a minute. ---------------------------------------------
if command -v redis-server >/dev/null; then
  redis_port=$(free_port)
  mkdir -p "$data_root/redis"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly yes \
    --appendfsync always --dir "$data_root/redis" --daemonize no \
    --logfile "$data_root/redis/redis.log" &
  redis_pid=$!
  pids+=("$redis_pid")
  for _ in $(seq 100); do
    python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)
s.sendall(b"PING\r\n")
sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)' "$redis_port" 2>/dev/null && break
    sleep 0.1
  done
  start_magnetar redis-a --storage "redis://127.0.0.1:$redis_port"
  start_magnetar redis-b --storage "redis://127.0.0.1:$redis_port"
  login redis-a
  login redis-b
  measure redis-a publish-c1 --scenario publish --connections 1
  measure redis-a publish-c64 --scenario publish --connections 64
  # Two nodes at once, 64 connections each, one generator per node: the report adds them up.
  measure redis-a publish2-c64 --scenario publish --connections 64 &
  pair=$!
  measure redis-b publish2-c64 --scenario publish --connections 64
  wait "$pair" || true
  measure redis-a fanout --scenario fanout --subscribers "$fanout_subs"
  # Published on node a, every subscriber on node b: each message crosses Redis (stream + pub/sub).
  measure redis-a fanout-cross --scenario fanout --subscribers "$fanout_subs" \
    --subscribe-url "${url_of[redis-b]}"
  stop redis-a redis-b
  kill "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
else
  echo "== redis: skipped (redis-server is not installed; scripts/deps.sh installs it)" >&2
fi

# --- eFTL: publish with QoS acks, fan-out to 10 matching subscriptions beside 0, 1,000 and 10,000
# non-matching ones (bench/eftl_run.sh, its own memory server, pinned likewise; one JSON line per run,
# kept beside the results and rendered by report.py) ----------------------------------------------
echo "== eftl (load $(cut -d' ' -f1 /proc/loadavg))" >&2
if ! "$root/bench/eftl_run.sh" "$build" $([[ $quick == 1 ]] && echo --quick) >"$work/eftl.jsonl" \
    2>"$work/eftl.err"; then
  echo "   (bench/eftl_run.sh failed: $(tail -3 "$work/eftl.err" | tr '\n' ' '))" >&2
fi

# --- the Pulsar binary protocol through the C++ client (memory engine, a fresh server) -----------
pulsar_port=$(free_port)
PULSAR_PORT=$pulsar_port start_magnetar pulsar --storage memory
login pulsar
# At most the retention of a topic (--max-messages-per-topic, 1,000,000 by default): consume reads
# back everything it produced.
pulsar_messages=$([[ $quick == 1 ]] && echo 200000 || echo 1000000)
measure_pulsar pulsar "$pulsar_port" pulsar-produce --scenario produce --messages "$pulsar_messages"
measure_pulsar pulsar "$pulsar_port" pulsar-consume --scenario consume --messages "$pulsar_messages"
measure_pulsar pulsar "$pulsar_port" pulsar-latency --scenario latency --rate 10000 --duration "$duration"
stop pulsar

# --- the Pulsar WebSocket API v2 through magnetar-bench (memory engine, a fresh server; the
# endpoints are on the main port too): produce with receipts, consume a pre-filled topic acking
# every message, publish -> consume latency at 10,000 msgs/s -----------------------------------------
start_magnetar pulsar-ws --storage memory
login pulsar-ws
pulsar_ws_messages=$([[ $quick == 1 ]] && echo 20000 || echo 400000)
measure pulsar-ws pulsar-ws-produce --scenario pulsar-ws-produce --window 256
measure pulsar-ws pulsar-ws-consume --scenario pulsar-ws-consume --window 256 \
  --messages "$pulsar_ws_messages"
measure pulsar-ws pulsar-ws-latency --scenario pulsar-ws-latency --rate 10000
stop pulsar-ws

# --- connections: a fresh server, so its baseline RSS holds no messages ----------------------------
start_magnetar connections --storage memory
login connections
measure connections hold --scenario connections --waiters "$waiters" --idle-ws "$idle_ws" \
  --source-addresses "$source_addresses" --duration "$hold"
stop connections

# --- allocations per fan-out delivery -------------------------------------------------------------
export LD_PRELOAD_COUNTER=$counter MALLOC_COUNTER_OUT=$work/allocs-fanout.txt
start_magnetar allocs --storage memory
unset LD_PRELOAD_COUNTER MALLOC_COUNTER_OUT
login allocs
measure allocs fanout --scenario fanout --subscribers "$fanout_subs" --mark-signal 12  # SIGUSR2
stop allocs

# --- the publish path profile and allocations per publish ----------------------------------------
echo "== bench/profile.sh (load $(cut -d' ' -f1 /proc/loadavg))" >&2
profile_seconds=$([[ $quick == 1 ]] && echo 2 || echo 4)
if ! "$root/bench/profile.sh" --out "$work/profile" --seconds "$profile_seconds" \
    >"$work/profile.log" 2>&1; then
  echo "   (bench/profile.sh failed: $(tail -5 "$work/profile.log" | tr '\n' ' '))" >&2
fi

elapsed=$(($(date +%s) - started))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
stamp=$(date -u +%Y-%m-%d-%H%M)
suffix=$([[ $quick == 1 ]] && echo "-quick" || true)
out_json=$root/bench/results/$stamp$suffix.json
[[ -s $work/eftl.jsonl ]] && cp "$work/eftl.jsonl" "$root/bench/results/$stamp$suffix-eftl.jsonl"

python3 "$root/bench/report.py" \
  --runs "$results" --allocs-fanout "$work/allocs-fanout.txt" --profile "$work/profile" \
  --eftl "$work/eftl.jsonl" \
  --out "$out_json" \
  --command "$command_line" --build-type "$build_type" --quick "$quick" \
  --load-before "$load_before" --load-after "$load_after" --elapsed "$elapsed" \
  --fd-limit "$fd_limit" --pinning "${server_pin[*]:-none} / ${gen_pin[*]:-none}" \
  $([[ $write_md == 1 ]] && echo --markdown "$root/BENCHMARKS.md")
python3 "$root/bench/report.py" --from-json "$out_json" --markdown - | sed -n '/^### Every scenario/,/^### Connections/p'
echo "results: $out_json (measuring took ${elapsed}s)"
[[ $write_md == 1 ]] && echo "BENCHMARKS.md updated" || echo "BENCHMARKS.md not changed (--write-md to fill it)"
