#!/usr/bin/env bash
# eFTL scenarios (issue 12): starts `magnetar serve --storage memory` with an eFTL listener and
# runs eftl-bench against it: publish with QoS acks, then fan-out with few and with many
# distinct-matcher subscriptions (the delivery rate should not fall with the number of
# subscriptions that do not match). Prints one JSON object per run; measures, asserts nothing.
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
many=$([[ $quick == 1 ]] && echo 2000 || echo 10000)
work=$(mktemp -d)
: >"$work/out"
password=bench-$RANDOM$RANDOM
pid=
trap '[[ -n $pid ]] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; rm -rf "$work"' EXIT
env -i PATH="$PATH" HOME="${HOME:-/tmp}" PULSAR_JWT_SECRET_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  PULSAR_BOOTSTRAP_ADMIN_USERNAME=bench PULSAR_BOOTSTRAP_ADMIN_PASSWORD="$password" \
  "$magnetar" serve --host 127.0.0.1 --port 0 --pulsar-port 0 --eftl-port 0 --pulsar-ws-port 0 --storage memory \
  --data-dir "$work/data" --log-level warning --rate-limits off >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 100); do
  port=$(sed -n 's|.*magnetar eftl listening on ws://[^/]*:\([0-9]*\)/.*|\1|p' "$work/out")
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n ${port:-} ]] || { echo "magnetar did not start: $(cat "$work/err")" >&2; exit 1; }
# One channel (so one topic) per run.
run() {
  local channel=$1
  shift
  "$bench" --url "ws://127.0.0.1:$port/$channel" --user bench --password "$password" \
    --duration "$duration" --warmup "$warmup" --json "$@"
}
run publish --scenario publish --window 64
run fanout-few --scenario fanout --subscriptions 10 --matching 10 --window 64
run fanout-many --scenario fanout --subscriptions "$many" --matching 10 --window 64
