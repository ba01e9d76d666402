#include "server/server.h"

#include <sys/stat.h>

#include <charconv>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "auth/authenticator.h"
#include "auth/jwt.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/message_metrics.h"
#include "common/random.h"
#include "core/broker.h"
#include "eftl/eftl_api.h"
#include "http/http_service.h"
#include "net/blocking_pool.h"
#include "net/connection_tracker.h"
#include "net/io_pool.h"
#include "net/listener.h"
#include "net/tls.h"
#include "pulsar/admin_routes.h"
#include "pulsar/pulsar_service.h"
#include "pulsar_ws/pulsar_ws_api.h"
#include "relay/password_login.h"
#include "relay/rate_limiter.h"
#include "relay/relay_api.h"
#include "server/asio_scheduler.h"
#include "server/startup_guards.h"
#include "server/storage_factory.h"
#include "server/version.h"

namespace magnetar::server {

namespace {

constexpr auto kDrainDeadline = std::chrono::seconds(8);
constexpr auto kSweepInterval = std::chrono::seconds(1);

std::vector<std::string> DefaultTrustedHosts(const std::string& bind_host) {
  std::vector<std::string> hosts = {"localhost", "127.0.0.1", "::1", "[::1]"};
  if (bind_host != "0.0.0.0" && bind_host != "::") hosts.push_back(bind_host);
  return hosts;
}

// Writes a generated admin password to a 0600 file, so it never goes to the log.
Status WriteInitialPassword(const std::string& dir, const std::string& password,
                            std::string* path_out) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Unavailable("cannot create " + dir + ": " + ec.message());
  const std::string path = dir + "/initial-admin-password";
  const mode_t old_mask = umask(077);
  std::ofstream out(path, std::ios::trunc);
  umask(old_mask);
  if (!out) return Unavailable("cannot write " + path);
  out << password << "\n";
  chmod(path.c_str(), 0600);
  *path_out = path;
  return Status::Ok();
}

}  // namespace

struct Server::Impl {
  explicit Impl(ServeConfig c) : config(std::move(c)) {}

  ServeConfig config;
  const Clock& clock = SystemClock::Instance();
  std::unique_ptr<core::MessageStore> store;
  std::unique_ptr<core::TopicCatalog> topics;
  std::unique_ptr<core::KvStore> kv;
  std::unique_ptr<core::CursorStore> cursors;
  std::unique_ptr<auth::UserStore> users;
  std::unique_ptr<core::ClusterBus> bus;  // several nodes on one store; else null
  std::shared_ptr<core::SharedLimits> limits;  // cluster-wide limits and caps; else null
  bool records_remote = false;                 // Redis: every record read is a round trip
  std::unique_ptr<auth::TokenRecords> token_records;  // Redis: a token check in one round trip
  std::function<void()> close_storage;
  std::string storage_description;
  std::unique_ptr<core::Broker> broker;
  std::unique_ptr<auth::JwtCodec> jwt;
  std::unique_ptr<auth::Authenticator> authenticator;
  std::unique_ptr<net::IoPool> io;
  std::unique_ptr<AsioScheduler> scheduler;  // on `io`; used by `broker`
  std::unique_ptr<net::BlockingPool> blocking;
  net::ConnectionTracker tracker;
  std::unique_ptr<http::HttpService> http;
  std::unique_ptr<relay::RelayApi> relay;
  std::unique_ptr<pulsar_ws::PulsarWsApi> pulsar_ws;
  std::unique_ptr<pulsar::PulsarService> pulsar;
  std::unique_ptr<pulsar::AdminDeps> pulsar_admin;  // the /admin/v2 routes' (partitioned topics)
  std::shared_ptr<net::Listener> pulsar_listener;
  // --pulsar-tls-port: the same service over TLS (only with --tls-cert/--tls-key).
  std::shared_ptr<net::Listener> pulsar_tls_listener;
  std::unique_ptr<relay::RateLimiter> no_rate_limits;  // --rate-limits off
  std::shared_ptr<net::Listener> listener;
  // --pulsar-ws-port: a second listener on the main HttpService (-1: none).
  std::shared_ptr<net::Listener> pulsar_ws_listener;
  // eFTL: its own port, HTTP service and login rate limiter (--eftl-port -1: none of them).
  std::unique_ptr<http::HttpService> eftl_http;
  std::unique_ptr<eftl::EftlApi> eftl;
  std::unique_ptr<relay::RateLimiter> eftl_login_limiter;
  std::shared_ptr<net::Listener> eftl_listener;

  std::thread sweeper;
  std::mutex sweep_mutex;
  std::condition_variable sweep_cv;
  bool stopping = false;
  bool stopped = false;

  Status BuildStorage();
  Status BootstrapUsers();
  void SweepLoop();
};

Status Server::Impl::BuildStorage() {
  auto built = server::BuildStorage(config, clock);
  if (!built.ok()) return built.status();
  store = std::move(built->messages);
  topics = std::move(built->topics);
  kv = std::move(built->kv);
  cursors = std::move(built->cursors);
  users = std::move(built->users);
  bus = std::move(built->bus);
  limits = std::move(built->limits);
  records_remote = built->records_remote;
  token_records = std::move(built->token_records);
  close_storage = std::move(built->close);
  storage_description = std::move(built->description);
  return Status::Ok();
}

Status Server::Impl::BootstrapUsers() {
  auto log = Logger("server");
  std::string username = config.bootstrap_admin_username;
  std::string password = config.bootstrap_admin_password;
  if (username.empty() != password.empty()) {
    log->warn("bootstrap admin needs both a username and a password; ignoring");
    username.clear();
    password.clear();
  }
  if (username.empty()) {
    auto existing = users->List();
    if (!existing.ok()) return existing.status();
    if (!existing->empty()) return Status::Ok();
    // Nobody can log in yet: create "admin" with a random password kept in a 0600 file.
    username = "admin";
    password = Base64UrlEncode(RandomBytes(18));
    std::string path;
    if (Status s = WriteInitialPassword(config.data_dir, password, &path); !s.ok()) return s;
    log->warn("no bootstrap admin configured: created user 'admin'; its password is in {}", path);
  }
  std::optional<std::string> email;
  if (!config.bootstrap_admin_email.empty()) email = config.bootstrap_admin_email;
  if (Status s = auth::EnsureBootstrapAdmin(*users, clock, username, password, email); !s.ok()) {
    log->error("bootstrap admin '{}' not created: {}", username, s.message());
  }
  return Status::Ok();
}

void Server::Impl::SweepLoop() {
  std::unique_lock lock(sweep_mutex);
  while (!sweep_cv.wait_for(lock, kSweepInterval, [this] { return stopping; })) {
    lock.unlock();
    const UnixMicros now = clock.Now();
    store->Sweep(now);
    kv->Sweep(now);
    lock.lock();
  }
}

Server::Server(ServeConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Server::~Server() { Shutdown(); }

uint16_t Server::port() const { return impl_->listener ? impl_->listener->port() : 0; }

uint16_t Server::pulsar_port() const {
  return impl_->pulsar_listener ? impl_->pulsar_listener->port() : 0;
}

Status Server::Start() {
  Impl& s = *impl_;
  auto log = Logger("server");
  // Configuration refusals first (InvalidArgument: main() exits 2), before anything is touched.
  if (Status st = EnforceStartupGuards(s.config); !st.ok()) return st;
  std::shared_ptr<boost::asio::ssl::context> tls;
  if (!s.config.tls_cert.empty() || !s.config.tls_key.empty()) {
    if (s.config.tls_cert.empty() || s.config.tls_key.empty()) {
      return InvalidArgument("TLS needs both --tls-cert and --tls-key (MAGNETAR_TLS_CERT, "
                             "MAGNETAR_TLS_KEY)");
    }
    auto built = net::MakeServerTlsContext(s.config.tls_cert, s.config.tls_key);
    if (!built.ok()) return built.status();
    tls = std::move(built).value();
  }
  // --advertised-address: "host" or "host:port" ("[v6]:port"; a bare IPv6 address has more
  // than one ':'). Checked here, before anything is touched.
  std::string advertised_host;
  uint16_t advertised_port = 0;
  if (const std::string& adv = s.config.advertised_address; !adv.empty()) {
    const size_t colon = adv.rfind(':');
    const bool has_port = colon != std::string::npos && (adv.find(':') == colon || adv.front() == '[');
    advertised_host = has_port ? adv.substr(0, colon) : adv;
    unsigned port = 0;
    if (has_port) {
      const char* last = adv.data() + adv.size();
      auto [end, ec] = std::from_chars(adv.data() + colon + 1, last, port);
      if (ec != std::errc() || end != last || port == 0 || port > 65535) advertised_host.clear();
    }
    if (advertised_host.empty()) {
      return InvalidArgument("--advertised-address '" + adv +
                             "': expected host or host:port with a port 1-65535");
    }
    advertised_port = static_cast<uint16_t>(port);
  }
  if (Status st = s.BuildStorage(); !st.ok()) return st;

  std::string secret = s.config.jwt_secret_key;
  if (secret.empty()) {
    secret = RandomHex(32);
    log->warn("no JWT secret configured: using a random one; tokens will not survive a restart");
  }
  s.jwt = std::make_unique<auth::JwtCodec>(secret);
  s.authenticator = std::make_unique<auth::Authenticator>(*s.users, *s.jwt, *s.kv, s.clock,
                                                          s.token_records.get());
  const size_t threads =
      s.config.threads ? s.config.threads : std::max(1u, std::thread::hardware_concurrency());
  s.io = std::make_unique<net::IoPool>(threads);
  // Delayed messages are fanned out by timers on the I/O threads (they run once those start).
  s.scheduler = std::make_unique<AsioScheduler>(*s.io, s.clock);
  s.broker = std::make_unique<core::Broker>(*s.store, s.clock, s.scheduler.get(), s.bus.get());
  if (Status st = s.BootstrapUsers(); !st.ok()) return st;

  // On Redis every record read (a request's deny-list and user checks, its topic) waits for a
  // round trip on this pool: more threads keep more of them in flight.
  const size_t blocking_threads = s.config.blocking_threads ? s.config.blocking_threads
                                  : s.records_remote        ? 16
                                                            : 2;
  s.blocking = std::make_unique<net::BlockingPool>(blocking_threads);

  http::HttpOptions http_options;
  http_options.max_body_bytes = s.config.max_body_bytes;
  http_options.trusted_hosts = s.config.trusted_hosts.empty()
                                   ? DefaultTrustedHosts(s.config.host)
                                   : s.config.trusted_hosts;
  http_options.allowed_origins = s.config.allowed_origins;
  // On a non-loopback address these are refused by the startup guards (or were bypassed and
  // warned about there); on loopback they are allowed but still worth a word.
  if (IsLoopbackHost(s.config.host)) {
    for (const auto* list : {&http_options.trusted_hosts, &http_options.allowed_origins}) {
      if (std::find(list->begin(), list->end(), "*") != list->end()) {
        log->warn("INSECURE: {} include '*'",
                  list == &http_options.trusted_hosts ? "trusted hosts (any Host header)"
                                                      : "allowed origins (any web page)");
      }
    }
  } else if (!tls) {
    log->warn("serving plain HTTP on {}, which is not a loopback address: passwords and tokens "
              "cross the network in clear; use --tls-cert/--tls-key or a TLS-terminating proxy",
              s.config.host);
  }
  http_options.tls = tls;
  http_options.tls_handshake_timeout = std::chrono::seconds(s.config.tls_handshake_timeout_seconds);
  s.http = std::make_unique<http::HttpService>(http_options, s.tracker);

  relay::RelayOptions relay_options;
  relay_options.version = kVersion;
  relay_options.access_token_expire_minutes = s.config.access_token_expire_minutes;
  relay_options.refresh_token_ttl_days = s.config.refresh_token_ttl_days;
  relay_options.ws_max_per_user = s.config.ws_max_per_user;
  relay_options.ws_idle_seconds = s.config.ws_idle_seconds;
  relay_options.poll_max_per_user = s.config.poll_max_per_user;
  relay_options.idempotency_ttl_seconds = s.config.idempotency_ttl_seconds;
  relay_options.rate_limit_login = s.config.rate_limit_login;
  relay_options.rate_limit_refresh = s.config.rate_limit_refresh;
  relay_options.rate_limit_device_code = s.config.rate_limit_device_code;
  relay_options.rate_limit_publish = s.config.rate_limit_publish;
  relay_options.rate_limit_bulk = s.config.rate_limit_bulk;
  relay_options.rate_limit_device_token = s.config.rate_limit_device_token;
  relay_options.rate_limit_device_page = s.config.rate_limit_device_page;
  relay_options.device_code_ttl_seconds = s.config.device_code_ttl_seconds;
  relay_options.device_code_poll_interval = s.config.device_code_poll_interval;
  relay_options.public_base_url = s.config.public_base_url;
  relay_options.quota_publish_per_minute = s.config.quota_publish_per_minute;
  relay_options.quota_poll_per_minute = s.config.quota_poll_per_minute;
  relay_options.ws.max_message_bytes = s.config.max_body_bytes;
  relay_options.metrics_token = s.config.metrics_token;
  auto& relay_ws_metrics = metrics::MessagesFor(metrics::Protocol::kRelayWs);
  relay_options.ws.open_gauge = &relay_ws_metrics.websockets_open;
  relay_options.ws.dropped_frames = &relay_ws_metrics.dropped;
  relay::RelayDeps deps{*s.broker, *s.topics, *s.kv, *s.users, *s.authenticator,
                        *s.jwt,    *s.blocking, s.tracker, s.clock};
  deps.shared_limits = s.limits.get();
  deps.records_remote = s.records_remote;
  if (!s.config.rate_limits) {
    // Every rate check of the relay goes through this limiter: none refuses anything.
    s.no_rate_limits = std::make_unique<relay::UnlimitedRateLimiter>();
    deps.rate_limiter = s.no_rate_limits.get();
    log->warn("rate limits are OFF (--rate-limits off): no request is refused for its rate "
              "(per-address limits{}); for load tests only",
              s.config.quota_publish_per_minute || s.config.quota_poll_per_minute
                  ? " and the configured per-user quotas"
                  : "");
  } else if (s.config.quota_publish_per_minute || s.config.quota_poll_per_minute) {
    log->info("per-user quotas: {} published messages and {} long-polls per minute (0 = none)",
              s.config.quota_publish_per_minute, s.config.quota_poll_per_minute);
  }
  s.relay = std::make_unique<relay::RelayApi>(deps, relay_options);
  s.relay->Register(*s.http);

  pulsar_ws::PulsarWsOptions pulsar_ws_options;
  pulsar_ws_options.ws.max_message_bytes = s.config.max_body_bytes;
  auto& pulsar_ws_metrics = metrics::MessagesFor(metrics::Protocol::kPulsarWs);
  pulsar_ws_options.ws.open_gauge = &pulsar_ws_metrics.websockets_open;
  pulsar_ws_options.ws.dropped_frames = &pulsar_ws_metrics.dropped;
  pulsar_ws::PulsarWsDeps pulsar_ws_deps{*s.broker, *s.topics,        *s.cursors, *s.users,
                                         *s.authenticator, *s.blocking, s.tracker, s.clock};
  s.pulsar_ws = std::make_unique<pulsar_ws::PulsarWsApi>(pulsar_ws_deps, pulsar_ws_options);
  s.pulsar_ws->Register(*s.http);
  s.pulsar_admin = std::make_unique<pulsar::AdminDeps>(pulsar::AdminDeps{
      *s.broker, *s.topics, *s.users, *s.authenticator, *s.blocking, s.clock});
  pulsar::RegisterAdminRoutes(*s.http, *s.pulsar_admin);

  if (s.config.eftl_port >= 0) {
    if (s.config.rate_limits && s.limits) {
      // The same cluster-wide windows as the relay's (the check runs on the blocking pool).
      s.eftl_login_limiter = std::make_unique<relay::SharedRateLimiter>(*s.limits);
    } else if (s.config.rate_limits) {
      s.eftl_login_limiter = std::make_unique<relay::LocalRateLimiter>(s.clock);
    } else {
      s.eftl_login_limiter = std::make_unique<relay::UnlimitedRateLimiter>();
    }
    // The relay's password check and limit (POST /auth/login's), for eFTL logins with a password.
    eftl::PasswordCheck check = [&s](const std::string& client, const std::string& username,
                                     const std::string& password) {
      eftl::LoginOutcome out;
      const int limit = s.config.rate_limit_login;
      auto decision = s.eftl_login_limiter->Hit("eftl-login", client, limit);
      if (decision.unavailable) {
        out.kind = eftl::LoginOutcome::Kind::kError;
        out.detail = "rate limit service unavailable";
        return out;
      }
      if (!decision.allowed) {
        out.kind = eftl::LoginOutcome::Kind::kRateLimited;
        out.detail = "rate limit exceeded: " + std::to_string(limit) + " per 1 minute";
        return out;
      }
      relay::PasswordLogin login = relay::CheckPasswordLogin(*s.users, username, password);
      switch (login.kind) {
        case relay::PasswordLogin::Kind::kOk:
          out.kind = eftl::LoginOutcome::Kind::kOk;
          out.user = std::move(login.user);
          break;
        case relay::PasswordLogin::Kind::kInactive: out.kind = eftl::LoginOutcome::Kind::kInactive; break;
        case relay::PasswordLogin::Kind::kBadCredentials:
          out.kind = eftl::LoginOutcome::Kind::kBadCredentials;
          break;
        case relay::PasswordLogin::Kind::kError:
          out.kind = eftl::LoginOutcome::Kind::kError;
          out.detail = "user store unavailable";
          break;
      }
      return out;
    };
    eftl::EftlOptions eftl_options;
    eftl_options.ws.max_message_bytes = s.config.eftl_max_size;
    eftl_options.heartbeat_seconds = s.config.eftl_heartbeat_seconds;
    eftl_options.timeout_seconds = std::max(s.config.eftl_timeout_seconds, 2);
    eftl_options.max_pending_acks = s.config.eftl_max_pending_acks;
    eftl_options.login_timeout_seconds = s.config.eftl_login_timeout_seconds;
    eftl_options.session_retention_seconds = s.config.eftl_session_retention_seconds;
    eftl::EftlDeps eftl_deps{*s.broker,   *s.topics, *s.kv,    *s.cursors,       *s.authenticator,
                             *s.blocking, s.tracker, s.clock, std::move(check)};
    s.eftl = std::make_unique<eftl::EftlApi>(std::move(eftl_deps), eftl_options);
    s.eftl_http = std::make_unique<http::HttpService>(http_options, s.tracker);
    s.eftl->Register(*s.eftl_http);
    s.eftl_listener = std::make_shared<net::Listener>(
        *s.io, [http = s.eftl_http.get()](boost::asio::ip::tcp::socket socket) {
          http->Accept(std::move(socket));
        });
    if (Status st = s.eftl_listener->Listen(s.config.host, static_cast<uint16_t>(s.config.eftl_port));
        !st.ok()) {
      return Unavailable("eFTL port " + std::to_string(s.config.eftl_port) + ": " + st.message() +
                         " (--eftl-port: 0 picks a free port, -1 turns eFTL off)");
    }
  }

  s.listener = std::make_shared<net::Listener>(
      *s.io, [http = s.http.get()](boost::asio::ip::tcp::socket socket) {
        http->Accept(std::move(socket));
      });
  if (Status st = s.listener->Listen(s.config.host, s.config.port); !st.ok()) return st;
  if (s.config.pulsar_ws_port >= 0) {
    // Pulsar programs expect the WebSocket API on its own port (8080): the same HttpService as the
    // main port, so both serve the same routes, limits and TLS.
    s.pulsar_ws_listener = std::make_shared<net::Listener>(
        *s.io, [http = s.http.get()](boost::asio::ip::tcp::socket socket) {
          http->Accept(std::move(socket));
        });
    if (Status st = s.pulsar_ws_listener->Listen(s.config.host,
                                                 static_cast<uint16_t>(s.config.pulsar_ws_port));
        !st.ok()) {
      return Unavailable("Pulsar WebSocket port " + std::to_string(s.config.pulsar_ws_port) + ": " +
                         st.message() + " (--pulsar-ws-port: 0 picks a free port, -1 turns it off)");
    }
  }
  const bool pulsar_tls = tls && s.config.pulsar_tls_port >= 0;
  if (s.config.pulsar_port >= 0 || pulsar_tls) {
    // The binary protocol shares the WebSocket API's subscriptions and producer names.
    pulsar::PulsarDeps pulsar_deps{*s.broker,         *s.topics,   *s.users,
                                   *s.authenticator,  *s.blocking, s.tracker,
                                   s.clock,           s.pulsar_ws->subscriptions(),
                                   s.pulsar_ws->producer_names()};
    if (s.config.pulsar_port >= 0) {
      s.pulsar_listener = std::make_shared<net::Listener>(
          *s.io, [&s](boost::asio::ip::tcp::socket socket) { s.pulsar->Accept(std::move(socket)); });
      if (Status st = s.pulsar_listener->Listen(s.config.host, static_cast<uint16_t>(s.config.pulsar_port));
          !st.ok()) {
        return Unavailable("Pulsar port " + std::to_string(s.config.pulsar_port) + ": " + st.message() +
                           " (--pulsar-port; -1 turns it off)");
      }
    }
    if (pulsar_tls) {
      s.pulsar_tls_listener = std::make_shared<net::Listener>(
          *s.io, [&s](boost::asio::ip::tcp::socket socket) { s.pulsar->AcceptTls(std::move(socket)); });
      if (Status st = s.pulsar_tls_listener->Listen(s.config.host,
                                                    static_cast<uint16_t>(s.config.pulsar_tls_port));
          !st.ok()) {
        return Unavailable("Pulsar TLS port " + std::to_string(s.config.pulsar_tls_port) + ": " +
                           st.message() + " (--pulsar-tls-port; -1 turns it off)");
      }
    }
    pulsar::PulsarOptions pulsar_options;
    pulsar_options.server_version = std::string("Magnetar ") + kVersion;
    pulsar_options.default_partitions = static_cast<uint32_t>(s.config.pulsar_default_partitions);
    pulsar_options.advertised_host = s.config.host == "0.0.0.0" || s.config.host == "::"
                                         ? "127.0.0.1"
                                         : s.config.host;
    pulsar_options.advertised_port = s.pulsar_listener ? s.pulsar_listener->port() : 0;
    if (!advertised_host.empty()) pulsar_options.advertised_host = advertised_host;
    if (advertised_port != 0 && s.pulsar_listener) pulsar_options.advertised_port = advertised_port;
    if (pulsar_tls) {
      pulsar_options.tls_context = tls;
      pulsar_options.advertised_tls_port = s.pulsar_tls_listener->port();
      pulsar_options.tls_handshake_seconds = s.config.tls_handshake_timeout_seconds;
    }
    if (tls && s.pulsar_listener) {
      log->warn("the Pulsar port {} serves plain TCP{}: tokens cross the network in clear there "
                "unless it stays on a trusted network (--pulsar-port -1 turns it off)",
                s.pulsar_listener->port(),
                pulsar_tls ? " besides the TLS port " + std::to_string(s.pulsar_tls_listener->port())
                           : std::string());
    }
    s.pulsar = std::make_unique<pulsar::PulsarService>(pulsar_deps, pulsar_options);
  }
  s.io->Start();
  s.listener->Start();
  if (s.pulsar_listener) {
    s.pulsar_listener->Start();
    log->info("Pulsar binary protocol on pulsar://{}:{} (lookups answer {})", s.config.host,
              s.pulsar_listener->port(), s.pulsar->BrokerUrl());
  }
  if (s.pulsar_tls_listener) {
    s.pulsar_tls_listener->Start();
    log->info("Pulsar binary protocol over TLS on pulsar+ssl://{}:{} (lookups answer {})",
              s.config.host, s.pulsar_tls_listener->port(), s.pulsar->BrokerUrlTls());
  }
  if (s.pulsar_ws_listener) s.pulsar_ws_listener->Start();
  if (s.eftl_listener) s.eftl_listener->Start();
  s.sweeper = std::thread([&s] { s.SweepLoop(); });

  const std::string url = (tls ? "https://" : "http://") + s.config.host + ":" +
                          std::to_string(s.listener->port());
  log->info("magnetar {} listening on {} (storage: {}{})", kVersion, url, s.storage_description,
            tls ? "; TLS 1.2+ with " + s.config.tls_cert : std::string());
  std::cout << "magnetar listening on " << url << std::endl;
  if (s.pulsar_ws_listener) {
    const std::string ws_url = (tls ? "wss://" : "ws://") + s.config.host + ":" +
                               std::to_string(s.pulsar_ws_listener->port()) + "/ws/v2/";
    log->info("Pulsar WebSocket API listening on {}", ws_url);
    std::cout << "magnetar pulsar-ws listening on " << ws_url << std::endl;
  }
  if (s.eftl_listener) {
    const std::string eftl_url = (tls ? "wss://" : "ws://") + s.config.host + ":" +
                                 std::to_string(s.eftl_listener->port()) + "/<channel>";
    log->info("eFTL channel listening on {}", eftl_url);
    std::cout << "magnetar eftl listening on " << eftl_url << std::endl;
  }
  return Status::Ok();
}

void Server::Shutdown() {
  Impl& s = *impl_;
  if (s.stopped || !s.io) return;
  s.stopped = true;
  auto log = Logger("server");
  log->info("shutting down: draining connections");
  if (s.listener) s.listener->Stop();
  if (s.pulsar_listener) s.pulsar_listener->Stop();
  if (s.pulsar_tls_listener) s.pulsar_tls_listener->Stop();
  if (s.pulsar_ws_listener) s.pulsar_ws_listener->Stop();
  if (s.eftl_listener) s.eftl_listener->Stop();
  if (s.relay) s.relay->Shutdown();
  s.tracker.ShutdownAll();
  const auto deadline = std::chrono::steady_clock::now() + kDrainDeadline;
  while (s.tracker.size() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (s.tracker.size() > 0) log->warn("{} connections still open at the deadline", s.tracker.size());
  s.io->Stop();
  s.io->Join();
  {
    std::lock_guard lock(s.sweep_mutex);
    s.stopping = true;
  }
  s.sweep_cv.notify_all();
  if (s.sweeper.joinable()) s.sweeper.join();
  s.blocking->Stop();
  // Last: queued writes finish (their callbacks only post to the stopped I/O threads).
  if (s.close_storage) s.close_storage();
  log->info("stopped");
}

}  // namespace magnetar::server
