#!/usr/bin/env bash
# Installs the Debian packages Magnetar's build and tests need. Idempotent: when everything is
# present it only runs dpkg-query and exits, so it costs well under a second.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libargon2-dev libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  librocksdb-dev
  libhiredis-dev redis-server  # the Redis engine (src/storage/redis) and its tests
  libprotobuf-dev protobuf-compiler  # Pulsar binary protocol (src/pulsar/codec)
  liblz4-dev libzstd-dev zlib1g-dev libsnappy-dev  # Pulsar payload compression
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  python3 python3-pytest python3-requests python3-websocket
  nodejs chromium
  curl
  openssl
  linux-perf valgrind  # bench/profile.sh (perf) and allocation sites (valgrind --tool=dhat)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
