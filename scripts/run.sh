#!/usr/bin/env bash
# Installs what is missing, builds, and starts Magnetar on the embedded default storage.
# Options after the script name go to `magnetar serve` (see `magnetar serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh release magnetar >/dev/null

host="${MAGNETAR_HOST:-127.0.0.1}"
port="${MAGNETAR_PORT:-9100}"
data_dir="${MAGNETAR_DATA_DIR:-./magnetar-data}"
mkdir -p "$data_dir"
chmod 700 "$data_dir"

# A JWT secret kept in the data directory, so tokens survive a restart.
secret_file="$data_dir/jwt-secret"
if [ -z "${MAGNETAR_JWT_SECRET_KEY:-}${PULSAR_JWT_SECRET_KEY:-}" ]; then
  if [ ! -s "$secret_file" ]; then
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$secret_file")
  fi
  export MAGNETAR_JWT_SECRET_KEY="$(cat "$secret_file")"
fi

url="http://$host:$port"
echo "Magnetar will listen on $url"
echo "Pulsar clients: pulsar://$host:${MAGNETAR_PULSAR_PORT:-6650} with the access token as the Pulsar token"
echo "Pulsar WebSocket clients: ws://$host:${MAGNETAR_PULSAR_WS_PORT:-8080}/ws/v2/… (and $url/ws/v2/…)"
if [ -z "${MAGNETAR_BOOTSTRAP_ADMIN_USERNAME:-}${PULSAR_BOOTSTRAP_ADMIN_USERNAME:-}" ]; then
  echo "Log in as 'admin'; the password is in $data_dir/initial-admin-password once it starts:"
  echo "  curl -s $url/auth/login -d username=admin -d \"password=\$(cat $data_dir/initial-admin-password)\""
else
  echo "Log in with the bootstrap admin you configured: curl -s $url/auth/login -d username=… -d password=…"
fi
exec ./build/src/server/magnetar serve --host "$host" --port "$port" --data-dir "$data_dir" "$@"
