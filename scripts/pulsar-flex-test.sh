#!/usr/bin/env bash
# Pulsar binary protocol tests with a real third-party client (tests/pulsar_flex/): pulsar-flex, a
# pure-JavaScript Pulsar client from npm, against the server binary in $MAGNETAR_BIN (default: the
# release build). Installs pulsar-flex into tests/pulsar_flex/node_modules (gitignored) when it is
# missing. Exits non-zero on any failure, never hangs (every step has a timeout) and leaves no
# server behind.
#   scripts/pulsar-flex-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export MAGNETAR_BIN="${MAGNETAR_BIN:-$PWD/build/src/server/magnetar}"

for tool in node npm "$MAGNETAR_BIN"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "pulsar-flex-test: $tool not found (scripts/deps.sh installs node and npm)" >&2
    exit 1
  fi
done

if [ ! -f tests/pulsar_flex/node_modules/pulsar-flex/package.json ]; then
  echo "pulsar-flex-test: installing pulsar-flex into tests/pulsar_flex/node_modules" >&2
  timeout 300 npm ci --prefix tests/pulsar_flex --no-audit --no-fund --loglevel=error
fi

export PULSAR_FLEX_ARTIFACTS="$(mktemp -d /tmp/magnetar-pulsar-flex-XXXXXX)"
# The tests stop their own server; the outer timeout is the backstop for a hang anywhere.
status=0
timeout --kill-after=10 300 node --test --test-timeout=60000 --test-concurrency=1 \
  tests/pulsar_flex/pulsar_flex.test.mjs || status=$?
echo "pulsar-flex-test: server logs in $PULSAR_FLEX_ARTIFACTS"
exit "$status"
