#!/usr/bin/env bash
# bench/redis_cluster.sh: publish throughput with 1 and 2 magnetar nodes on one Redis (issue 8),
# next to one node on the memory engine, with magnetar-bench (publish scenario, closed loop).
#   bench/redis_cluster.sh [build dir] [seconds] [connections per node]
#   NODE_ARGS="--blocking-threads 32" bench/redis_cluster.sh   # extra `serve` options per node
# Redis runs with AOF and appendfsync always (the durable setting of docs/cluster.md).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
seconds=${2:-5}
conns=${3:-32}
bin=$build/src/server/magnetar
gen=$build/bench/magnetar-bench
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
export PULSAR_JWT_SECRET_KEY=bench-secret-0123456789abcdef0123456789abcdef
export PULSAR_BOOTSTRAP_ADMIN_USERNAME=admin PULSAR_BOOTSTRAP_ADMIN_PASSWORD=bench-password-1
start_node() {  # storage -> sets $port (no command substitution: the pid must stay in $pids)
  port=$(free_port)
  (cd "$work" && exec "$bin" serve --host 127.0.0.1 --port "$port" --storage "$1" --pulsar-port 0 \
     --eftl-port 0 --pulsar-ws-port 0 --rate-limits off --log-level warning ${NODE_ARGS:-} >>"$work/node-$port.log" 2>&1) &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
}
measure() {  # ports... -> total messages/s over all nodes
  local outs=()
  for p in "$@"; do
    "$gen" --url "http://127.0.0.1:$p" --user admin --password bench-password-1 --scenario publish \
      --connections "$conns" --duration "$seconds" --warmup 1 --json >"$work/out-$p.json" 2>"$work/err-$p.log" &
    outs+=($!)
  done
  wait "${outs[@]}" || true
  for p in "$@"; do [[ -s $work/out-$p.json ]] || { echo "magnetar-bench failed on port $p:" >&2; cat "$work/err-$p.log" "$work"/node-$p.log >&2; }; done
  python3 - "$work" "$@" <<'PY'
import json, sys
total = 0.0
for p in sys.argv[2:]:
    r = json.load(open(f"{sys.argv[1]}/out-{p}.json"))
    v = r.get("requests_per_s")
    total += float(v["value"] if isinstance(v, dict) else v)
print(f"{total:.0f}")
PY
}
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync "${REDIS_FSYNC:-always}" \
  --dir "$work" --daemonize no --logfile "$work/redis.log" &
pids+=($!)
sleep 0.5
start_node memory; mem=$port
echo "memory, 1 node:            $(measure "$mem") publishes/s"
start_node "redis://127.0.0.1:$rport"; a=$port
echo "redis, 1 node:             $(measure "$a") publishes/s"
start_node "redis://127.0.0.1:$rport"; b=$port
echo "redis, 2 nodes (together): $(measure "$a" "$b") publishes/s"
