#!/usr/bin/env bash
# Real-browser tests (tests/browser/): headless Debian Chromium driven by playwright-core from npm,
# against the server binary in $MAGNETAR_BIN (default: the release build). Installs playwright-core
# into tests/browser/node_modules (gitignored) when it is missing. Exits non-zero on any failure,
# never hangs (every step has a timeout) and leaves no Chromium or server behind.
#   scripts/browser-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export MAGNETAR_BIN="${MAGNETAR_BIN:-$PWD/build/src/server/magnetar}"
export CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"

for tool in node npm "$CHROMIUM_BIN" "$MAGNETAR_BIN"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "browser-test: $tool not found (scripts/deps.sh installs node, npm and chromium)" >&2
    exit 1
  fi
done

if [ ! -f tests/browser/node_modules/playwright-core/package.json ]; then
  echo "browser-test: installing playwright-core into tests/browser/node_modules" >&2
  timeout 300 npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi

export BROWSER_ARTIFACTS="$(mktemp -d /tmp/magnetar-browser-XXXXXX)"
# The tests stop their own server and browser. The outer timeout is the backstop for a hang
# anywhere: it signals the whole process group it runs node in (the server with it), and
# playwright closes Chromium on SIGTERM; KILL follows 10 s later.
status=0
timeout --kill-after=10 300 node --test --test-timeout=90000 --test-concurrency=1 \
  tests/browser/device_flow.test.mjs tests/browser/dashboard.test.mjs || status=$?
echo "browser-test: screenshots and logs in $BROWSER_ARTIFACTS"
exit "$status"
