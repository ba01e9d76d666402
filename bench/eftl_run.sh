#!/usr/bin/env bash
# eFTL scenarios (issue 12): starts `magnetar serve --storage memory` with an eFTL listener and
# runs eftl-bench against it: publish with QoS acks, then fan-out to 10 matching subscriptions
# with 0, 1,000 and 10,000 NON-matching subscriptions (distinct matchers) beside them, in three
# interleaved rounds (one with --quick), so a disturbance hits one run, not one setting: the
# delivery rate must not fall with the number of subscriptions that do not match (the matcher
# index). Prints one JSON line per run, {"label": …, "result": <eftl-bench --json>} (a failed run
# gives {"ok": false, …} as its result and the others still run); measures, asserts nothing.
#   bench/eftl_run.sh [BUILD_DIR] [--quick]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
quick=0
[[ ${2:-} == --quick || ${1:-} == --quick ]] && quick=1
[[ ${1:-} == --quick ]] && build=$root/build
magnetar=$build/src/server/magnetar
bench=$build/bench/eftl-bench
for f in "$magnetar" "$bench"; do
  [[ -x $f ]] || { echo "missing $f (bash scripts/build.sh release magnetar eftl-bench)" >&2; exit 2; }
done
duration=$([[ $quick == 1 ]] && echo 1 || echo 8)
warmup=$([[ $quick == 1 ]] && echo 0.5 || echo 2)
matching=10
rounds=$([[ $quick == 1 ]] && echo 1 || echo 3)  # fan-out rounds, interleaved; report.py takes the best
# Pinned like bench/run.sh's other scenarios (server on core 1 with one I/O thread, the client on
# core 0), so rounds differ by the server's work, not by how the scheduler placed two processes.
server_pin=()
client_pin=()
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
  server_pin=(taskset -c 1)
  client_pin=(taskset -c 0)
fi
work=$(mktemp -d)
: >"$work/out"
password=bench-$RANDOM$RANDOM
pid=
trap '[[ -n $pid ]] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; rm -rf "$work"' EXIT
env -i PATH="$PATH" HOME="${HOME:-/tmp}" PULSAR_JWT_SECRET_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  PULSAR_BOOTSTRAP_ADMIN_USERNAME=bench PULSAR_BOOTSTRAP_ADMIN_PASSWORD="$password" \
  "${server_pin[@]}" "$magnetar" serve --host 127.0.0.1 --port 0 --pulsar-port 0 --eftl-port 0 \
  --pulsar-ws-port 0 --threads 1 --storage memory \
  --data-dir "$work/data" --log-level warning --rate-limits off >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 100); do
  port=$(sed -n 's|.*magnetar eftl listening on ws://[^/]*:\([0-9]*\)/.*|\1|p' "$work/out")
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n ${port:-} ]] || { echo "magnetar did not start: $(cat "$work/err")" >&2; exit 1; }
# One channel (so one topic) per run, named after the run's label.
run() {
  local label=$1
  shift
  local out
  out=$("${client_pin[@]}" "$bench" --url "ws://127.0.0.1:$port/$label" --user bench --password "$password" \
    --duration "$duration" --warmup "$warmup" --json "$@" 2>"$work/$label.err") || true
  [[ $out == \{* ]] || out="{\"ok\":false,\"error\":\"no output: $(head -c 200 "$work/$label.err" | tr -d '"\\' | tr '\n' ' ')\"}"
  printf '{"label":"%s","result":%s}\n' "$label" "$out"
}
run publish --scenario publish --window 64
for round in $(seq "$rounds"); do
  for non_matching in 0 1000 10000; do
    run "fanout-nm$non_matching-r$round" --scenario fanout \
      --subscriptions $((matching + non_matching)) --matching "$matching" --window 64
  done
done
