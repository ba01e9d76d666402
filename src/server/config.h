#pragma once

// ServeConfig: every `magnetar serve` option. Sources, highest first: command line, environment
// (MAGNETAR_<NAME>, then the reference server's PULSAR_<NAME>), the TOML file given by --config,
// defaults.

#include <optional>
#include <string>
#include <vector>

namespace magnetar::server {

struct ServeConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 9100;
  std::string storage = "rocksdb";          // rocksdb | memory | redis://…
  std::string data_dir = "./magnetar-data";
  std::string durability = "fsync";         // rocksdb: fsync | batch | none
  // rediss:// (Redis over TLS): the CAs of Redis' certificate (empty: the system's), and a client
  // certificate and key when Redis asks for one.
  std::string redis_tls_ca;
  std::string redis_tls_cert;
  std::string redis_tls_key;
  // redis:// storage: how long a node's hold on its connection slots (the cluster-wide
  // --ws-max-per-user / --poll-max-per-user caps) outlives the node; renewed every third of it.
  int slot_lease_seconds = 15;
  int sync_interval_ms = 10;                // rocksdb: WAL sync period (batch; records aside)
  size_t threads = 0;  // 0 = one per core
  size_t blocking_threads = 0;  // 0: 2, or 16 when every record read is a round trip (Redis)

  size_t max_body_bytes = 1 << 20;
  std::vector<std::string> trusted_hosts;   // empty = loopback names + the bind host
  bool trusted_hosts_set = false;           // given at all (even empty): see startup_guards.h
  std::vector<std::string> allowed_origins;

  std::string jwt_secret_key;               // empty = random per start (tokens die on restart)
  int access_token_expire_minutes = 10;
  int refresh_token_ttl_days = 90;
  std::string bootstrap_admin_username;
  std::string bootstrap_admin_password;
  std::string bootstrap_admin_email;

  int ws_max_per_user = 10;
  int ws_idle_seconds = 60;
  int poll_max_per_user = 50;
  uint64_t max_messages_per_topic = 1'000'000;
  int idempotency_ttl_seconds = 600;

  // Requests per minute per client address (relay spec §5.9, D13); 0 = unlimited.
  int rate_limit_login = 5;
  int rate_limit_refresh = 10;
  int rate_limit_device_code = 10;
  int rate_limit_publish = 120;
  int rate_limit_bulk = 30;
  int rate_limit_device_token = 30;
  int rate_limit_device_page = 20;

  // Device flow (RFC 8628, relay spec §5.7).
  int device_code_ttl_seconds = 600;
  int device_code_poll_interval = 5;
  // Absolute base of this server's URLs as clients reach it (e.g. behind a proxy); empty = from
  // each request's scheme and Host header.
  std::string public_base_url;

  // TLS: both set = the port serves HTTPS and WSS instead of HTTP and WS (PEM files).
  std::string tls_cert;
  std::string tls_key;
  int tls_handshake_timeout_seconds = 10;

  // false (--rate-limits off): no request is refused for its rate (per-address limits and
  // per-user quotas); concurrency caps stay. For load tests.
  bool rate_limits = true;
  // Per user, per minute; 0 = off (relay spec D13).
  int quota_publish_per_minute = 0;  // messages published (a bulk request counts each one)
  int quota_poll_per_minute = 0;     // long-poll requests

  std::string metrics_token;  // empty: GET /metrics is open (like /health)
  // Pulsar binary protocol (spec/pulsar-binary.md): TCP port (0 picks a free one, -1 = off) and
  // what LOOKUP tells clients to connect to ("host" or "host:port"; empty = --host and the port).
  int pulsar_port = 6650;
  // The same protocol over TLS (pulsar+ssl://), with --tls-cert/--tls-key; without them there is
  // no such listener. 0 picks a free port, -1 = off.
  int pulsar_tls_port = 6651;
  // Partitions of a topic first seen in a Pulsar partitioned-metadata request (0 = created
  // unpartitioned, Pulsar's default); PUT /admin/v2/.../partitions creates them explicitly.
  int pulsar_default_partitions = 0;
  std::string advertised_address;
  // Pulsar WebSocket API (spec/pulsar-websocket.md) on a Pulsar-style port of its own, besides the
  // main port which always serves it: 0 picks a free port, -1 = no second listener.
  int pulsar_ws_port = 8080;
  // eFTL channel (spec/eftl.md): its own listener; 0 picks a free port, -1 turns it off.
  int eftl_port = 9191;
  int eftl_heartbeat_seconds = 30;
  int eftl_timeout_seconds = 90;
  int eftl_max_pending_acks = 1000;
  int eftl_login_timeout_seconds = 15;
  int eftl_session_retention_seconds = 300;
  size_t eftl_max_size = 1 << 20;  // bytes: the welcome's max_size and the frame limit

  std::string log_level = "info";
  std::string log_format = "text";
  bool allow_insecure_defaults = false;
};

// Parses argv. Returns nullopt after printing help/version or an error; `exit_code` says which.
std::optional<ServeConfig> ParseCommandLine(int argc, char** argv, int* exit_code);

// Copies each reference PULSAR_* variable to its MAGNETAR_* name unless that is already set
// (JSON lists become comma-separated), so Magnetar drops in where pulsar-relay ran.
void ImportReferenceEnvironment();

}  // namespace magnetar::server
