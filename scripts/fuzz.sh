#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang, ASan + UBSan) in build-fuzz and runs each for a
# fixed budget on a scratch copy of its seed corpus (fuzz/corpus/<target>/), so the checked-in
# seeds never change. Exits non-zero if a fuzzer fails (crash, leak, UB, timeout, OOM); the
# failing inputs are kept in build-fuzz/fuzz-failures/<target>/.
#   FUZZ_SECONDS=20 scripts/fuzz.sh [targets...]
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
dir=build-fuzz
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_http_json fuzz_http_request fuzz_ws_frame fuzz_pulsar_frame fuzz_eftl_message)

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
# -O1 -g with assertions on: the usual libFuzzer trade-off between speed and diagnostics.
cmake -S . -B "$dir" -G Ninja \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DMAGNETAR_FUZZ=ON -DMAGNETAR_TESTS=OFF >/dev/null
ninja -C "$dir" "${targets[@]}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

work="$(mktemp -d "${TMPDIR:-/tmp}/magnetar-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  cp fuzz/corpus/"$t"/* "$work/$t/corpus/"
  echo "==> $t: ${FUZZ_SECONDS}s"
  status=0
  "$dir/fuzz/$t" "$work/$t/corpus" \
    -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$work/$t/artifacts/" -print_final_stats=1 \
    >"$work/$t/log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t/log" | tail -1)
  corpus=$(ls "$work/$t/corpus" | wc -l)
  if [ "$status" -ne 0 ] || ls "$work/$t/artifacts"/* >/dev/null 2>&1; then
    failed=1
    mkdir -p "$dir/fuzz-failures/$t"
    cp "$work/$t/artifacts"/* "$dir/fuzz-failures/$t/" 2>/dev/null || true
    cp "$work/$t/log" "$dir/fuzz-failures/$t/log.txt"
    echo "FAILED: $t (exit $status); inputs and log in $dir/fuzz-failures/$t/"
    grep -E -A30 '^==[0-9]+==ERROR|runtime error|fuzz invariant failed|deadly signal' \
      "$work/$t/log" | head -60 || tail -40 "$work/$t/log"
  else
    echo "    ok: ${runs:-?} runs, ${speed:-?} exec/s, corpus ${corpus} inputs"
  fi
done
exit "$failed"
