#!/usr/bin/env bash
# ctest magnetar_bench_smoke: runs every magnetar-bench scenario for a fraction of a second
# against a real magnetar (memory engine), and publish against the reference server, so the
# generator is exercised in CI. It asserts only that the runs succeeded (requests answered,
# deliveries received, no errors), never how fast: performance is measured by bench/run.sh.
#
#   bench/smoke_test.sh <magnetar binary> <magnetar-bench binary> <reference_server binary>
set -euo pipefail

magnetar=$1
bench=$2
reference=$3
work=$(mktemp -d /tmp/magnetar-bench-smoke.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Starts "$@" with output in $work/$1.log (by label) and sets $url from its "listening on" line.
start() {
  local label=$1
  shift
  "$@" >"$work/$label.log" 2>&1 &
  pids+=($!)
  last_pid=$!
  for _ in $(seq 200); do
    url=$(grep -o 'listening on http://[0-9.:]*' "$work/$label.log" | head -1 | sed 's/listening on //') || true
    [[ -n "$url" ]] && return 0
    kill -0 "$last_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "FAIL: $label did not start"; cat "$work/$label.log"; exit 1
}

password="smoke-$RANDOM-$RANDOM-password"
start magnetar env PULSAR_JWT_SECRET_KEY="smoke-secret-0123456789abcdef0123456789abcdef" \
  PULSAR_BOOTSTRAP_ADMIN_USERNAME=bench PULSAR_BOOTSTRAP_ADMIN_PASSWORD="$password" \
  "$magnetar" serve --host 127.0.0.1 --port 0 --pulsar-port 0 --eftl-port 0 --pulsar-ws-port 0 --storage memory --data-dir "$work/data" \
  --threads 2 --rate-limit-login 0 --rate-limit-publish 0 --rate-limit-bulk 0 \
  --ws-max-per-user 100000 --poll-max-per-user 100000 --log-level warning
magnetar_url=$url
magnetar_pid=$last_pid
start reference "$reference" --host 127.0.0.1 --port 0 --threads 1
reference_url=$url

failures=0
run() {
  local name=$1
  shift
  local out="$work/$name.json"
  if "$bench" --warmup 0.1 --duration 0.4 --json "$@" >"$out" 2>"$work/$name.err" &&
     grep -q '"ok":true' "$out"; then
    echo "ok    $name: $(cut -c1-200 "$out")"
  else
    echo "FAIL  $name"; cat "$out" "$work/$name.err"
    failures=$((failures + 1))
  fi
}

# The first run logs in with the password (the form login every relay client uses); the others
# reuse one token (--login-only), since each password check is a deliberately slow Argon2 hash.
run publish     --url "$magnetar_url" --user bench --password "$password" --scenario publish \
                --connections 4
token=$("$bench" --url "$magnetar_url" --user bench --password "$password" --login-only) ||
  { echo "FAIL: magnetar-bench --login-only"; exit 1; }
[[ -n $token ]] || { echo "FAIL: --login-only printed no token"; exit 1; }
auth=(--url "$magnetar_url" --token "$token")
run bulk        "${auth[@]}" --scenario bulk --connections 2 --batch 10
run poll        "${auth[@]}" --scenario poll --connections 2 --poll-gap-ms 1
run e2e         "${auth[@]}" --scenario e2e --connections 2 --rate 2000 --subscribers 2
run fanout      "${auth[@]}" --scenario fanout --subscribers 20
run connections "${auth[@]}" --scenario connections --waiters 20 --idle-ws 20 \
                --server-pid "$magnetar_pid" --source-addresses 2
run pulsar-ws-produce "${auth[@]}" --scenario pulsar-ws-produce --window 16
run pulsar-ws-consume "${auth[@]}" --scenario pulsar-ws-consume --messages 500 --subscribers 2
run pulsar-ws-latency "${auth[@]}" --scenario pulsar-ws-latency --rate 2000
run reference   --url "$reference_url" --user any --password any --scenario publish --connections 2

if ((failures)); then
  echo "magnetar log:"; tail -50 "$work/magnetar.log"
  exit 1
fi
echo "all magnetar-bench smoke runs succeeded"
