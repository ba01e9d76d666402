#!/usr/bin/env bash
# bench/profile.sh: where a publish spends its time. Starts magnetar (memory engine, one I/O
# thread, pinned to core 1), drives it with magnetar-bench (pinned to core 0), and records the
# server with perf (sampling, DWARF call graphs) while the load runs. Prints the hottest
# functions by self time and by inclusive time; the raw data stays in the output directory.
#
#   bench/profile.sh [scenario args...]      default: --scenario publish --connections 64
#   BENCH_BUILD_DIR=<dir>  (default build-bench, built by bench/run.sh)
#   PROFILE_SECONDS=<n>    (default 5)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build-bench}
seconds=${PROFILE_SECONDS:-5}
args=("$@")
((${#args[@]})) || args=(--scenario publish --connections 64)
command -v perf >/dev/null || { echo "perf not found (apt-get install linux-perf)" >&2; exit 1; }

out=$(mktemp -d "${TMPDIR:-/tmp}/magnetar-profile.XXXXXX")
password="profile-$RANDOM$RANDOM"
taskset -c 1 env -i PATH="$PATH" PULSAR_JWT_SECRET_KEY="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  PULSAR_BOOTSTRAP_ADMIN_USERNAME=bench PULSAR_BOOTSTRAP_ADMIN_PASSWORD="$password" \
  "$build/src/server/magnetar" serve --host 127.0.0.1 --port 0 --pulsar-port 0 --eftl-port 0 --threads 1 --storage memory \
  --data-dir "$out/data" --log-level warning --rate-limit-login 0 --rate-limit-publish 0 \
  --rate-limit-bulk 0 --ws-max-per-user 1000000 --poll-max-per-user 1000000 >"$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
url=
for _ in $(seq 200); do
  url=$(grep -o 'listening on http://[0-9.:]*' "$out/server.log" | sed 's/listening on //') || true
  [[ -n $url ]] && break
  sleep 0.05
done
[[ -n $url ]] || { cat "$out/server.log"; exit 1; }

taskset -c 0 "$build/bench/magnetar-bench" --url "$url" --user bench --password "$password" \
  --warmup 1 --duration $((seconds + 2)) --server-pid "$server" "${args[@]}" >"$out/bench.txt" &
bench=$!
sleep 1.5
perf record -q -F 2000 --call-graph dwarf,16384 -p "$server" -o "$out/perf.data" -- sleep "$seconds" \
  2>"$out/perf-record.log" || true
wait $bench || true
cat "$out/bench.txt"
echo
echo "== self time (top 40)"
perf report -i "$out/perf.data" --no-children --sort dso,symbol -g none --percent-limit 0.4 --stdio \
  2>/dev/null | grep -E '^ +[0-9]' | sed -E 's/ +$//' | cut -c1-160 | head -45
echo
echo "== inclusive time (top 40)"
perf report -i "$out/perf.data" --children --sort symbol -g none --percent-limit 2 --stdio \
  2>/dev/null | grep -E '^ +[0-9]' | sed -E 's/ +$//' | cut -c1-160 | head -60
echo
echo "raw data: $out/perf.data (perf report -i $out/perf.data)"
