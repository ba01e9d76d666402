#!/usr/bin/env bash
# bench/profile.sh: where a publish spends its time, and how many allocations it makes.
#
#   bench/profile.sh [--out DIR] [--seconds N] [--connections N]
#   BENCH_BUILD_DIR=<dir>   binaries (default build-bench, built by bench/run.sh)
#   PROFILER=perf|callgrind (default: perf when `perf stat -e instructions true` counts
#                           instructions, i.e. hardware counters are available; else callgrind)
#
# Magnetar runs on the memory engine with one I/O thread (pinned to core 1 when there are two),
# driven by magnetar-bench publishing single messages over --connections keep-alive connections
# (pinned to core 0). Two passes, each on a fresh server:
#   1. allocations: LD_PRELOAD bench/malloc_counter.so; magnetar-bench signals the server when
#      its measured window opens and closes (--mark-signal), so the count covers exactly the
#      publishes of the window: allocations (and bytes) per publish;
#   2. profile of the same load: perf record (call graphs) and perf stat (instructions), or
#      callgrind with instrumentation switched on only for the measured window (login, start-up
#      and warm-up excluded): instructions per publish, the hottest functions by self and by
#      inclusive cost, and the self cost grouped by component.
# Output in DIR (default: a fresh directory under /tmp): summary.txt (short, for BENCHMARKS.md),
# profile-summary.json (the same figures, for bench/report.py), the raw profile and the logs.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build-bench}
out=
seconds=4
connections=16
while (($#)); do
  case $1 in
    --out) out=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    *) echo "usage: bench/profile.sh [--out DIR] [--seconds N] [--connections N]" >&2; exit 2 ;;
  esac
done
[[ -n $out ]] || out=$(mktemp -d "${TMPDIR:-/tmp}/magnetar-profile.XXXXXX")
mkdir -p "$out"
out=$(cd "$out" && pwd)

magnetar=$build/src/server/magnetar
bench=$build/bench/magnetar-bench
counter=$build/bench/libmalloc_counter.so
for bin in "$magnetar" "$bench" "$counter"; do
  [[ -e $bin ]] || { echo "missing $bin (bench/run.sh builds it)" >&2; exit 1; }
done

profiler=${PROFILER:-}
if [[ -z $profiler ]]; then
  # Virtual machines often have no hardware counters: perf then prints "<not supported>".
  if command -v perf >/dev/null &&
     perf stat -x, -e instructions true 2>&1 >/dev/null | grep -qE '^[0-9]+,'; then
    profiler=perf
  elif command -v valgrind >/dev/null; then
    profiler=callgrind
  else
    echo "neither perf with hardware counters nor valgrind is available" >&2
    exit 1
  fi
fi

server_pin=()
gen_pin=()
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
  server_pin=(taskset -c 1)
  gen_pin=(taskset -c 0)
fi

password="profile-$RANDOM$RANDOM-password"
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
  [[ -f $out/perf-record.pid ]] && kill -INT "$(cat "$out/perf-record.pid")" 2>/dev/null || true
  [[ -f $out/perf-stat.pid ]] && kill -INT "$(cat "$out/perf-stat.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

# start_server <label> <wrapper...>: starts magnetar (memory engine, one I/O thread) behind the
# wrapper (env, valgrind, ...), waits for "listening on", sets $server_pid and $url.
start_server() {
  local label=$1
  shift
  rm -rf "$out/data-$label"
  "${server_pin[@]}" env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
    PULSAR_JWT_SECRET_KEY="$secret" PULSAR_BOOTSTRAP_ADMIN_USERNAME=bench \
    PULSAR_BOOTSTRAP_ADMIN_PASSWORD="$password" "$@" \
    "$magnetar" serve --host 127.0.0.1 --port 0 --pulsar-port 0 --eftl-port 0 --pulsar-ws-port 0 --threads 1 --storage memory \
    --data-dir "$out/data-$label" --log-level warning --rate-limits off \
    --ws-max-per-user 1000000 --poll-max-per-user 1000000 >"$out/server-$label.log" 2>&1 &
  server_pid=$!
  url=
  for _ in $(seq 1200); do  # under valgrind the start (one Argon2 hash) takes a while
    url=$(grep -o 'listening on http://[0-9.:]*' "$out/server-$label.log" | head -1 |
          sed 's/listening on //') || true
    [[ -n $url ]] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "magnetar ($label) did not start:" >&2
  cat "$out/server-$label.log" >&2
  exit 1
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

# load <name> [extra magnetar-bench args...]: the publish load, its JSON result in $out/<name>.json
load() {
  local name=$1
  shift
  local token
  token=$("${gen_pin[@]}" "$bench" --url "$url" --user bench --password "$password" --login-only)
  "${gen_pin[@]}" "$bench" --url "$url" --token "$token" --scenario publish \
    --connections "$connections" --warmup 1 --duration "$seconds" --server-pid "$server_pid" \
    --json "$@" >"$out/$name.json" 2>"$out/$name.err" ||
    { echo "magnetar-bench failed ($name):" >&2; cat "$out/$name.json" "$out/$name.err" >&2; exit 1; }
}

# --- 1. allocations per publish --------------------------------------------------------------------
rm -f "$out/allocs.txt"
start_server allocs LD_PRELOAD="$counter" MALLOC_COUNTER_OUT="$out/allocs.txt"
load allocs --mark-signal 12  # SIGUSR2: malloc_counter appends its totals
stop_server

# --- 2. the profile ----------------------------------------------------------------------------------
cat >"$out/mark.sh" <<EOF
#!/usr/bin/env bash
# Called by magnetar-bench --mark-command with "start" or "stop".
set -u
case \$1 in
EOF
if [[ $profiler == perf ]]; then
  cat >>"$out/mark.sh" <<'EOF'
  start)
    perf record -q -F 1999 --call-graph dwarf,16384 -p "$SERVER_PID" -o "$OUT/perf.data" \
      2>"$OUT/perf-record.log" &
    echo $! >"$OUT/perf-record.pid"
    perf stat -x, -e instructions,task-clock -p "$SERVER_PID" -o "$OUT/perf-stat.csv" &
    echo $! >"$OUT/perf-stat.pid"
    sleep 0.3 ;;
  stop)
    for f in perf-record perf-stat; do
      pid=$(cat "$OUT/$f.pid"); kill -INT "$pid"
      while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
      rm -f "$OUT/$f.pid"
    done ;;
esac
EOF
  start_server profile
else
  cat >>"$out/mark.sh" <<'EOF'
  start) callgrind_control --instr=on "$SERVER_PID" >/dev/null ;;
  stop) callgrind_control --dump=window "$SERVER_PID" >/dev/null
        callgrind_control --instr=off "$SERVER_PID" >/dev/null ;;
esac
EOF
  # Instrumentation starts off: start-up and the login's Argon2 hash run at near-native speed.
  start_server profile valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$out/callgrind.out" --dump-instr=no
fi
chmod +x "$out/mark.sh"
export SERVER_PID=$server_pid OUT=$out  # for mark.sh, run by magnetar-bench
load load --mark-command "$out/mark.sh"
stop_server

# --- summary -----------------------------------------------------------------------------------------
if [[ $profiler == perf ]]; then
  perf report -i "$out/perf.data" --no-children --sort dso,symbol -g none --percent-limit 0.3 \
    --stdio 2>/dev/null >"$out/perf-self.txt" || true
  perf report -i "$out/perf.data" --children --sort symbol -g none --percent-limit 1 \
    --stdio 2>/dev/null >"$out/perf-children.txt" || true
else
  dump=$(ls -t "$out"/callgrind.out.* 2>/dev/null | head -1 || true)
  [[ -n $dump ]] || { echo "no callgrind dump in $out" >&2; exit 1; }
  callgrind_annotate --threshold=99 --auto=no --inclusive=no "$dump" >"$out/callgrind-self.txt"
  callgrind_annotate --threshold=99 --auto=no --inclusive=yes "$dump" >"$out/callgrind-inclusive.txt"
fi
python3 "$root/bench/profile_summary.py" --dir "$out" --profiler "$profiler" \
  --connections "$connections"
cat "$out/summary.txt"
echo
echo "raw data: $out"
