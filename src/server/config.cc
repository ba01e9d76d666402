#include "server/config.h"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <cstdlib>
#include <iostream>

#include "server/version.h"

namespace magnetar::server {

namespace {

// Reference setting name (spec §8.2) -> Magnetar option name; both upper-cased in the env.
constexpr std::pair<const char*, const char*> kReferenceEnv[] = {
    {"PULSAR_JWT_SECRET_KEY", "MAGNETAR_JWT_SECRET_KEY"},
    {"PULSAR_BOOTSTRAP_ADMIN_USERNAME", "MAGNETAR_BOOTSTRAP_ADMIN_USERNAME"},
    {"PULSAR_BOOTSTRAP_ADMIN_PASSWORD", "MAGNETAR_BOOTSTRAP_ADMIN_PASSWORD"},
    {"PULSAR_BOOTSTRAP_ADMIN_EMAIL", "MAGNETAR_BOOTSTRAP_ADMIN_EMAIL"},
    {"PULSAR_TRUSTED_HOSTS", "MAGNETAR_TRUSTED_HOSTS"},
    {"PULSAR_ALLOWED_ORIGINS", "MAGNETAR_ALLOWED_ORIGINS"},
    {"PULSAR_ACCESS_TOKEN_EXPIRE_MINUTES", "MAGNETAR_ACCESS_TOKEN_EXPIRE_MINUTES"},
    {"PULSAR_REFRESH_TOKEN_TTL_DAYS", "MAGNETAR_REFRESH_TOKEN_TTL_DAYS"},
    {"PULSAR_WS_MAX_PER_USER", "MAGNETAR_WS_MAX_PER_USER"},
    {"PULSAR_WS_IDLE_SECONDS", "MAGNETAR_WS_IDLE_SECONDS"},
    {"PULSAR_MAX_BODY_BYTES", "MAGNETAR_MAX_BODY_BYTES"},
    {"PULSAR_MAX_MESSAGES_PER_TOPIC", "MAGNETAR_MAX_MESSAGES_PER_TOPIC"},
    {"PULSAR_LOG_LEVEL", "MAGNETAR_LOG_LEVEL"},
    {"PULSAR_ALLOW_INSECURE_DEFAULTS", "MAGNETAR_ALLOW_INSECURE_DEFAULTS"},
    {"PULSAR_CONFIG_FILE", "MAGNETAR_CONFIG"},
    {"PULSAR_DEVICE_CODE_TTL_SECONDS", "MAGNETAR_DEVICE_CODE_TTL_SECONDS"},
    {"PULSAR_DEVICE_CODE_POLL_INTERVAL", "MAGNETAR_DEVICE_CODE_POLL_INTERVAL"},
    // slowapi's switch, as the reference reads it (with and without the PULSAR_ prefix).
    {"PULSAR_RATELIMIT_ENABLED", "MAGNETAR_RATE_LIMITS"},
    {"RATELIMIT_ENABLED", "MAGNETAR_RATE_LIMITS"},
};

// `["a","b"]` -> "a,b"; anything else unchanged.
std::string ListToCsv(const std::string& value) {
  if (value.empty() || value.front() != '[') return value;
  boost::system::error_code ec;
  auto parsed = boost::json::parse(value, ec);
  if (ec || !parsed.is_array()) return value;
  std::string out;
  for (const auto& item : parsed.get_array()) {
    if (!item.is_string()) continue;
    if (!out.empty()) out += ",";
    out += item.get_string();
  }
  return out;
}

}  // namespace

void ImportReferenceEnvironment() {
  for (const auto& [reference, ours] : kReferenceEnv) {
    const char* value = std::getenv(reference);
    if (value && !std::getenv(ours)) setenv(ours, ListToCsv(value).c_str(), 0);
  }
  // Lists given the reference way to our own names are accepted too.
  for (const char* name : {"MAGNETAR_TRUSTED_HOSTS", "MAGNETAR_ALLOWED_ORIGINS"}) {
    if (const char* value = std::getenv(name)) setenv(name, ListToCsv(value).c_str(), 1);
  }
  if (const char* level = std::getenv("MAGNETAR_LOG_LEVEL")) {
    std::string lower(level);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    setenv("MAGNETAR_LOG_LEVEL", lower.c_str(), 1);
  }
}

std::optional<ServeConfig> ParseCommandLine(int argc, char** argv, int* exit_code) {
  ServeConfig c;
  CLI::App app{"Magnetar: one message relay and broker for the relay HTTP API, Pulsar and eFTL"};
  app.set_version_flag("--version", std::string(kVersion));
  app.require_subcommand(1);
  CLI::App* serve = app.add_subcommand("serve", "Run the server");
  serve->set_config("--config", "", "TOML file with options (names as below, e.g. port = 9100)")
      ->envname("MAGNETAR_CONFIG");

  auto opt = [&](const std::string& name, auto& field, const std::string& help) {
    std::string env = "MAGNETAR_";
    for (char ch : name.substr(2)) {
      env.push_back(ch == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
    }
    // Given twice, the last value wins (so a wrapper's defaults can be overridden).
    return serve->add_option(name, field, help)
        ->envname(env)
        ->capture_default_str()
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  };
  std::string trusted_hosts, allowed_origins;
  opt("--host", c.host, "Address to listen on");
  opt("--port", c.port, "HTTP port (relay API, WebSocket, health); 0 picks a free port");
  opt("--storage", c.storage,
      "Storage engine: rocksdb (durable, data in --data-dir), memory (nothing survives a "
      "restart) or redis://[user:password@]host:port[/db] (several nodes on one Redis; see "
      "docs/cluster.md)");
  opt("--data-dir", c.data_dir, "Data directory (rocksdb data; initial admin password file)");
  opt("--durability", c.durability,
      "rocksdb: when a publish is acknowledged: fsync (its write is synced to disk), batch "
      "(written; synced every --sync-interval-ms) or none (written; never synced by magnetar)")
      ->check(CLI::IsMember({"fsync", "batch", "none"}));
  opt("--sync-interval-ms", c.sync_interval_ms,
      "rocksdb: how often the write-ahead log is synced when durability is batch (and for users, "
      "topics, tokens and cursors, which are written without waiting for a sync)")
      ->check(CLI::Range(1, 10'000));
  opt("--threads", c.threads, "I/O threads (0 = one per core)");
  opt("--blocking-threads", c.blocking_threads, "Threads for password hashing and blocking storage (0: 2, or 16 on Redis)");
  opt("--max-body-bytes", c.max_body_bytes, "Largest request body; larger gets 413 unread")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 30));
  opt("--trusted-hosts", trusted_hosts,
      "Comma-separated Host header values accepted (*.domain wildcards; * = any). "
      "Default: localhost, 127.0.0.1, ::1 and the bind host");
  opt("--allowed-origins", allowed_origins, "Comma-separated Origins allowed for CORS and WebSocket");
  opt("--jwt-secret-key", c.jwt_secret_key,
      "HS256 secret for access tokens (>= 32 chars). Unset: random per start");
  opt("--access-token-expire-minutes", c.access_token_expire_minutes, "Access token lifetime")
      ->check(CLI::Range(1, 120));
  opt("--refresh-token-ttl-days", c.refresh_token_ttl_days, "Refresh token lifetime")
      ->check(CLI::Range(1, 365));
  opt("--bootstrap-admin-username", c.bootstrap_admin_username, "Admin user created at start");
  opt("--bootstrap-admin-password", c.bootstrap_admin_password,
      "Its password (re-hashed when changed). Prefer the environment to the command line");
  opt("--bootstrap-admin-email", c.bootstrap_admin_email, "Its e-mail");
  opt("--ws-max-per-user", c.ws_max_per_user, "Concurrent relay WebSockets per user")
      ->check(CLI::PositiveNumber);
  opt("--ws-idle-seconds", c.ws_idle_seconds, "Close a relay WebSocket silent this long")
      ->check(CLI::Range(5, 86400));
  opt("--poll-max-per-user", c.poll_max_per_user, "Concurrent long-polls per user")
      ->check(CLI::PositiveNumber);
  opt("--max-messages-per-topic", c.max_messages_per_topic, "Retention: messages kept per topic")
      ->check(CLI::PositiveNumber);
  opt("--idempotency-ttl-seconds", c.idempotency_ttl_seconds,
      "How long an Idempotency-Key is remembered")
      ->check(CLI::Range(1, 7 * 86400));
  opt("--rate-limit-login", c.rate_limit_login,
      "Password logins per minute per client address (0 = unlimited)")
      ->check(CLI::Range(0, 1'000'000));
  opt("--rate-limit-refresh", c.rate_limit_refresh,
      "Refresh-token rotations per minute per client address (0 = unlimited)")
      ->check(CLI::Range(0, 1'000'000));
  opt("--rate-limit-device-code", c.rate_limit_device_code,
      "Device-code requests per minute per client address (0 = unlimited)")
      ->check(CLI::Range(0, 1'000'000));
  opt("--rate-limit-device-token", c.rate_limit_device_token,
      "Device-flow token polls per minute per client address (0 = unlimited)")
      ->check(CLI::Range(0, 1'000'000));
  opt("--rate-limit-device-page", c.rate_limit_device_page,
      "Device verification page views per minute per client address (0 = unlimited)")
      ->check(CLI::Range(0, 1'000'000));
  opt("--device-code-ttl-seconds", c.device_code_ttl_seconds,
      "How long a device-flow user code can be approved")
      ->check(CLI::Range(60, 3600));
  opt("--device-code-poll-interval", c.device_code_poll_interval,
      "Seconds a device must wait between token polls (each slow_down adds 5)")
      ->check(CLI::Range(1, 60));
  opt("--public-base-url", c.public_base_url,
      "Base of this server's URLs as clients reach it (e.g. https://relay.example.org behind a "
      "proxy), for the device flow's verification_uri. Default: each request's scheme and Host")
      ->check([](const std::string& v) {
        return v.empty() || v.starts_with("http://") || v.starts_with("https://")
                   ? std::string()
                   : std::string("must start with http:// or https://");
      });
  opt("--rate-limit-publish", c.rate_limit_publish,
      "Single publishes per minute per client address (0 = unlimited)")
      ->check(CLI::Range(0, 1'000'000));
  opt("--rate-limit-bulk", c.rate_limit_bulk,
      "Bulk publishes per minute per client address (0 = unlimited)")
      ->check(CLI::Range(0, 1'000'000));
  std::string rate_limits = "on";
  opt("--rate-limits", rate_limits,
      "on, or off: no request is refused for its rate (the per-address limits above and the "
      "per-user quotas below; concurrency caps stay). For load tests")
      ->check(CLI::IsMember({"on", "off", "true", "false", "yes", "no", "1", "0"},
                            CLI::ignore_case));
  opt("--quota-publish-per-minute", c.quota_publish_per_minute,
      "Messages each user may publish per minute, single and bulk together (0 = no quota)")
      ->check(CLI::Range(0, 100'000'000));
  opt("--quota-poll-per-minute", c.quota_poll_per_minute,
      "Long-poll requests each user may make per minute (0 = no quota)")
      ->check(CLI::Range(0, 100'000'000));
  opt("--tls-cert", c.tls_cert,
      "PEM certificate chain; with --tls-key the port serves HTTPS and WSS instead of HTTP and WS");
  opt("--tls-key", c.tls_key, "PEM private key (unencrypted) of --tls-cert");
  opt("--redis-tls-ca", c.redis_tls_ca,
      "rediss:// storage: PEM file of the CAs that sign Redis' certificate (default: the system's)");
  opt("--redis-tls-cert", c.redis_tls_cert,
      "rediss:// storage: PEM client certificate, when Redis requires one (tls-auth-clients)");
  opt("--redis-tls-key", c.redis_tls_key, "rediss:// storage: PEM private key of --redis-tls-cert");
  opt("--slot-lease-seconds", c.slot_lease_seconds,
      "redis:// storage: a node's connection slots (per-user WebSocket and long-poll caps, "
      "counted cluster-wide) are freed this long after the node dies")
      ->check(CLI::Range(1, 3600));
  opt("--tls-handshake-timeout", c.tls_handshake_timeout_seconds,
      "Seconds a client has to complete its TLS handshake")
      ->check(CLI::Range(1, 300));
  opt("--metrics-token", c.metrics_token,
      "When set, GET /metrics requires 'Authorization: Bearer <token>' (Prometheus: "
      "authorization.credentials)");
  opt("--pulsar-port", c.pulsar_port,
      "Pulsar binary protocol port (0 picks a free port, -1 turns it off)")
      ->check(CLI::Range(-1, 65535));
  opt("--pulsar-tls-port", c.pulsar_tls_port,
      "Pulsar binary protocol over TLS (pulsar+ssl://), served only with --tls-cert/--tls-key (0 "
      "picks a free port, -1 turns it off)")
      ->check(CLI::Range(-1, 65535));
  opt("--pulsar-default-partitions", c.pulsar_default_partitions,
      "Pulsar: new topics a client asks partition metadata for are created with this many "
      "partitions (Pulsar's allowAutoTopicCreationType=partitioned, defaultNumPartitions); 0 = "
      "not partitioned")
      ->check(CLI::Range(0, 4096));
  opt("--advertised-address", c.advertised_address,
      "Pulsar: the host (or host:port) that topic lookups send clients to. Default: --host (or "
      "127.0.0.1 when it is a wildcard) and the Pulsar port");
  opt("--pulsar-ws-port", c.pulsar_ws_port,
      "Pulsar WebSocket API port (ws://HOST:PORT/ws/v2/...; the main port serves it too); 0 picks "
      "a free port, -1 turns this listener off")
      ->check(CLI::Range(-1, 65535));
  opt("--eftl-port", c.eftl_port,
      "eFTL channel port (WebSocket, subprotocol v1.eftl.tibco.com); 0 picks a free port, -1 "
      "turns eFTL off")
      ->check(CLI::Range(-1, 65535));
  opt("--eftl-heartbeat", c.eftl_heartbeat_seconds, "eFTL: seconds between server heartbeats")
      ->check(CLI::Range(1, 3600));
  opt("--eftl-timeout", c.eftl_timeout_seconds,
      "eFTL: close a client silent this many seconds (also told to clients in the welcome)")
      ->check(CLI::Range(2, 86400));
  opt("--eftl-login-timeout", c.eftl_login_timeout_seconds,
      "eFTL: close a connection that has not logged in after this many seconds")
      ->check(CLI::Range(1, 3600));
  opt("--eftl-session-retention", c.eftl_session_retention_seconds,
      "eFTL: seconds a disconnected client may come back with its id_token and resume")
      ->check(CLI::Range(0, 86400));
  opt("--eftl-max-pending-acks", c.eftl_max_pending_acks,
      "eFTL: unacknowledged deliveries per connection before delivery pauses, when the client "
      "does not ask for its own")
      ->check(CLI::Range(1, 1'000'000));
  opt("--eftl-max-size", c.eftl_max_size,
      "eFTL: largest frame in bytes (the welcome's max_size; larger closes with 1009)")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 30));
  opt("--log-level", c.log_level, "trace, debug, info, warning, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warning", "warn", "error", "critical"}));
  opt("--log-format", c.log_format, "text or json")->check(CLI::IsMember({"text", "json"}));
  serve->add_flag("--allow-insecure-defaults", c.allow_insecure_defaults,
                  "INSECURE: start even when a startup guard refuses the settings (weak JWT "
                  "secret, half a bootstrap admin, empty or '*' trusted hosts, '*' origins); "
                  "warns on every start")
      ->envname("MAGNETAR_ALLOW_INSECURE_DEFAULTS");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *exit_code = app.exit(e);
    return std::nullopt;
  }
  auto split = [](const std::string& csv) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i <= csv.size()) {
      size_t j = csv.find(',', i);
      if (j == std::string::npos) j = csv.size();
      std::string item = csv.substr(i, j - i);
      while (!item.empty() && item.front() == ' ') item.erase(item.begin());
      while (!item.empty() && item.back() == ' ') item.pop_back();
      if (!item.empty()) out.push_back(item);
      i = j + 1;
    }
    return out;
  };
  c.trusted_hosts = split(trusted_hosts);
  // Explicitly empty counts as set (CLI11 ignores an empty environment value, so look there).
  c.trusted_hosts_set = serve->get_option("--trusted-hosts")->count() > 0 ||
                        std::getenv("MAGNETAR_TRUSTED_HOSTS") != nullptr;
  std::string rl = rate_limits;
  for (auto& ch : rl) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  c.rate_limits = !(rl == "off" || rl == "false" || rl == "no" || rl == "0");
  c.allowed_origins = split(allowed_origins);
  *exit_code = 0;
  return c;
}

}  // namespace magnetar::server
