#pragma once

// RelayApi: the pulsar-relay HTTP, long-poll and WebSocket API (spec/relay-http.md §0-§5, with
// corrections D1-D16) as a thin translation onto the core. Handlers live in one file per surface
// (health, auth, users, tokens, topics, messages, poll, websocket); this class holds what they
// share (refresh-token records, rate-limit counters).
//
// Lifecycle: built by server/, Register()ed on an HttpService before the listener starts;
// Shutdown() answers parked long-polls and closes relay WebSockets; destroyed after the I/O
// threads have stopped.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/authenticator.h"
#include "auth/jwt.h"
#include "auth/user_store.h"
#include "core/broker.h"
#include "core/kv_store.h"
#include "core/shared_limits.h"
#include "core/topic_catalog.h"
#include "common/metrics.h"
#include "http/http_service.h"
#include "net/blocking_pool.h"
#include "ws/ws_connection.h"

namespace magnetar::relay {

struct RelayOptions {
  std::string version = "0.1.0";
  int access_token_expire_minutes = 10;
  int refresh_token_ttl_days = 90;
  int ws_max_per_user = 10;
  int ws_idle_seconds = 60;
  int poll_max_per_user = 50;
  int idempotency_ttl_seconds = 600;
  int revocation_check_seconds = 5;  // how often an open WebSocket re-checks its token
  // Requests per minute per client address (spec §5.9, D13); 0 = unlimited.
  int rate_limit_login = 5;
  int rate_limit_refresh = 10;
  int rate_limit_device_code = 10;
  int rate_limit_publish = 120;
  int rate_limit_bulk = 30;
  // Per-user quotas per minute (D13), 0 = none: messages published (single and bulk together;
  // a bulk request counts each message) and long-poll requests.
  int quota_publish_per_minute = 0;
  int quota_poll_per_minute = 0;
  // Device flow (spec §5.7; Magnetar's own sign-in page, see README.md).
  int device_code_ttl_seconds = 600;
  int device_code_poll_interval = 5;
  int rate_limit_device_token = 30;
  int rate_limit_device_page = 20;  // GET /auth/device[/], per client
  // Failed user-code lookups per minute, per client and over the whole code space (all clients
  // together): past either, lookups answer 429 until the window ends, so codes cannot be guessed.
  int device_lookup_failures_per_client = 10;
  int device_lookup_failures_total = 100;
  int device_page_session_minutes = 15;  // the verification page's sign-in cookie
  // Absolute base of this server's URLs ("https://relay.example.org"); empty = from each request
  // (scheme, then the Host header, which the trusted-hosts check has vetted).
  std::string public_base_url;
  // GET /metrics requires `Authorization: Bearer <metrics_token>` when set; open when empty.
  std::string metrics_token;
  ws::WsOptions ws;
};

class RateLimiter;
class ConnectionSlots;
class RefreshTokens;
class DeviceCodes;
class DevicePageSessions;

struct RelayDeps {
  core::Broker& broker;
  core::TopicCatalog& topics;
  core::KvStore& kv;
  auth::UserStore& users;
  auth::Authenticator& authenticator;
  const auth::JwtCodec& jwt;
  net::BlockingPool& blocking;
  net::ConnectionTracker& tracker;
  const Clock& clock;
  // Request counters to use instead of the default (e.g. --rate-limits off); null = the default:
  // a SharedRateLimiter on `shared_limits` when there is one, else a process-local one.
  RateLimiter* rate_limiter = nullptr;
  // The engine's cluster-wide counters (redis://); null = one node, caps and limits in memory.
  core::SharedLimits* shared_limits = nullptr;
  // The engine's record reads (users, deny-list, idempotency, topic records) are network round
  // trips (Redis): they run on `blocking`, never on an I/O thread (RunRecordWork).
  bool records_remote = false;
};

class PollManager;
class WsRegistry;
struct MessageRequest;
struct PollRequest;
class IdempotencyGate;

class RelayApi {
 public:
  RelayApi(RelayDeps deps, RelayOptions options);
  ~RelayApi();

  void Register(http::HttpService& service);
  // Answers every parked long-poll now (with what it has) and closes relay WebSockets (1001).
  void Shutdown();

  PollManager& polls() { return *polls_; }

 private:
  void RegisterHealth(http::HttpService& service);
  void RegisterAuth(http::HttpService& service);
  void RegisterUsers(http::HttpService& service);
  void RegisterTokens(http::HttpService& service);
  void RegisterTopics(http::HttpService& service);
  void RegisterMessages(http::HttpService& service);
  void RegisterPoll(http::HttpService& service);
  void RegisterWebSocket(http::HttpService& service);
  void RegisterDevice(http::HttpService& service);
  void RegisterOps(http::HttpService& service);  // /metrics, /ui (ops_routes.cc)
  void PublishAllowed(const std::shared_ptr<IdempotencyGate>& gate,
                      const http::RequestContextPtr& ctx, auth::User user, MessageRequest request,
                      std::string scoped, std::string fingerprint, http::Responder respond);
  void PublishWithRecords(const std::shared_ptr<IdempotencyGate>& gate,
                          const http::RequestContextPtr& ctx, auth::User user,
                          MessageRequest request, const std::string& scoped,
                          const std::string& fingerprint, http::Responder respond);
  net::BlockingPool* RecordsPool() { return deps_.records_remote ? &deps_.blocking : nullptr; }

  void Refresh(const std::string& wire, const http::Responder& respond);
  // The rest of a /ws handshake once its token was checked (ws_routes.cc).
  void AdmitWebSocket(const http::RequestContextPtr& ctx,
                      const std::shared_ptr<net::AnyStream>& held, Result<auth::AuthContext> auth,
                      std::string token);
  void Park(const http::RequestContextPtr& ctx, std::string user_id, PollRequest request,
            const http::Responder& respond);
  void PublishBulk(const auth::User& user, std::vector<MessageRequest> requests,
                   std::function<void(http::Response, bool)> finish);
  // Counts the request against `limit_per_minute` for `route` and the peer address; the 429 to
  // send when it is over (spec §5.9, D13). Call after authentication and validation.
  std::optional<http::Response> RateLimited(std::string_view route, int limit_per_minute,
                                            const http::RequestContext& ctx);
  // The same without waiting on this thread (the request paths): the per-address limit of
  // `route`, then, when `quota_limit` > 0, the user's quota `quota_route` (`cost` units); then
  // `proceed()` on ctx's executor, or `respond` with the 429/503. Inline for local counters.
  void ThenIfAllowed(const http::RequestContextPtr& ctx, std::string_view route,
                     int limit_per_minute, std::string_view quota_route,
                     const std::string& user_id, int quota_limit, int cost,
                     const http::Responder& respond, std::function<void()> proceed);

  RelayDeps deps_;
  RelayOptions options_;
  std::unique_ptr<PollManager> polls_;
  std::shared_ptr<WsRegistry> ws_registry_;
  std::unique_ptr<RefreshTokens> refresh_tokens_;
  std::unique_ptr<DeviceCodes> device_codes_;
  std::unique_ptr<DevicePageSessions> device_sessions_;
  std::unique_ptr<RateLimiter> own_rate_limiter_;  // when deps_ brings none
  RateLimiter* rate_limiter_;
  std::shared_ptr<ConnectionSlots> slots_;  // per-user WebSocket / long-poll caps, cluster-wide
  metrics::CallbackHandle connections_gauge_;  // magnetar_connections_open
};

}  // namespace magnetar::relay
