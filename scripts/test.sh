#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit tests and the black-box suite on a
# release build and on an AddressSanitizer + UndefinedBehaviorSanitizer build (plus the real-browser
# tests on the release build), then the fuzzers for a short fixed budget. Exits non-zero on any
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh

# The system Python has pytest, requests and websocket-client from Debian.
PYTHON=/usr/bin/python3
failed=0
run() {
  echo "==> $*"
  if ! "$@"; then
    echo "FAILED: $*"
    failed=1
  fi
}

for flavour in release asan; do
  dir=build
  [ "$flavour" = asan ] && dir=build-asan
  echo "==> building ($flavour)"
  bash scripts/build.sh "$flavour"
  # A small quarantine keeps ASan's own memory out of the bounded-memory checks.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1:quarantine_size_mb=16"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  run ctest --test-dir "$dir" --output-on-failure -j 2 --timeout 300
  run env MAGNETAR_BIN="$PWD/$dir/src/server/magnetar" MAGNETAR_REQUIRE_BIN=1 \
    "$PYTHON" -m pytest tests/blackbox -q -p no:cacheprovider
  # A person in a real browser (headless Chromium): the device-flow approval page.
  if [ "$flavour" = release ]; then
    run env MAGNETAR_BIN="$PWD/$dir/src/server/magnetar" bash scripts/browser-test.sh
    # A real third-party Pulsar client (pulsar-flex, npm) on the binary protocol.
    run env MAGNETAR_BIN="$PWD/$dir/src/server/magnetar" bash scripts/pulsar-flex-test.sh
  fi
done

if [ -x scripts/fuzz.sh ]; then
  run env FUZZ_SECONDS="${FUZZ_SECONDS:-20}" bash scripts/fuzz.sh
fi

if [ "$failed" -ne 0 ]; then
  echo "test.sh: some suites failed"
  exit 1
fi
echo "test.sh: all suites passed"
