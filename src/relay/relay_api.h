#pragma once

// RelayApi: the pulsar-relay HTTP, long-poll and WebSocket API (spec/relay-http.md §0-§5, with
// corrections D1-D16) as a thin translation onto the core. Handlers live in one file per surface
// (health, auth, topics, messages, poll, websocket); this class holds what they share.
//
// Lifecycle: built by server/, Register()ed on an HttpService before the listener starts;
// Shutdown() answers parked long-polls and closes relay WebSockets; destroyed after the I/O
// threads have stopped.

#include <memory>
#include <string>

#include "auth/authenticator.h"
#include "auth/jwt.h"
#include "auth/user_store.h"
#include "core/broker.h"
#include "core/kv_store.h"
#include "core/topic_catalog.h"
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
  ws::WsOptions ws;
};

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
};

class PollManager;
class WsRegistry;
struct MessageRequest;

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
  void RegisterTopics(http::HttpService& service);
  void RegisterMessages(http::HttpService& service);
  void RegisterPoll(http::HttpService& service);
  void RegisterWebSocket(http::HttpService& service);
  void PublishBulk(const auth::User& user, const std::vector<MessageRequest>& requests,
                   std::function<void(http::Response, bool)> finish);

  RelayDeps deps_;
  RelayOptions options_;
  std::unique_ptr<PollManager> polls_;
  std::shared_ptr<WsRegistry> ws_registry_;
};

}  // namespace magnetar::relay
