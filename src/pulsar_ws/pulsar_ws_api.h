#pragma once

// PulsarWsApi: the Apache Pulsar WebSocket API v2 (spec/pulsar-websocket.md) on the shared core:
// /ws/v2/producer/…, /ws/v2/consumer/…/{subscription}, /ws/v2/reader/… as WebSocket upgrades.
// Every check (path, query parameters, token, tenant, producer name, exclusive subscription)
// happens before the upgrade, and a refusal is the HTTP status of spec §2.
//
// Identity: the `token` query parameter or `Authorization: Bearer` is a relay JWT (deny-list and
// active flag honoured). The tenant is a username: `persistent://alice/default/jobs` is relay user
// alice's topic `jobs` (core::TopicKey{alice's user id, "jobs"}). Only the namespace `default`
// exists. A caller may use its own tenant; an admin may use any existing user's.
//
// Lifecycle: built by server/ and Register()ed on every HttpService that should serve it; must
// outlive the I/O threads.

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>

#include "auth/authenticator.h"
#include "auth/user_store.h"
#include "core/broker.h"
#include "core/cursor_store.h"
#include "core/topic_catalog.h"
#include "http/http_service.h"
#include "net/blocking_pool.h"
#include "pulsar_ws/subscription.h"
#include "ws/ws_connection.h"

namespace magnetar::pulsar_ws {

struct PulsarWsDeps {
  core::Broker& broker;
  core::TopicCatalog& topics;
  core::CursorStore& cursors;
  auth::UserStore& users;
  auth::Authenticator& authenticator;
  net::BlockingPool& blocking;
  net::ConnectionTracker& tracker;
  const Clock& clock;
};

struct PulsarWsOptions {
  ws::WsOptions ws;
};

// Runs `work()` where the store allows (inline for an in-memory store, else on the blocking pool),
// then `then(result)` on `executor`.
template <typename Work, typename Then>
void RunStoreWork(const PulsarWsDeps& deps, const boost::asio::any_io_executor& executor,
                  Work work, Then then) {
  if (!deps.broker.store().blocking()) return then(work());
  deps.blocking.Run(executor, std::move(work), std::move(then));
}

// Live producer names per topic (one producer per name, spec §3.1). Thread-safe.
class ProducerNames {
 public:
  bool TryAcquire(const core::TopicKey& topic, const std::string& name);
  void Release(const core::TopicKey& topic, const std::string& name);

 private:
  std::mutex mutex_;
  std::set<std::tuple<std::string, std::string, std::string>> live_;
};

class PulsarWsApi {
 public:
  PulsarWsApi(PulsarWsDeps deps, PulsarWsOptions options);
  ~PulsarWsApi();

  void Register(http::HttpService& service);

  // Shared with the binary protocol (pulsar/), so a subscription or a producer name is one thing
  // whichever protocol its clients speak.
  SubscriptionRegistry& subscriptions() { return *subscriptions_; }
  const std::shared_ptr<ProducerNames>& producer_names() const { return producer_names_; }

 private:
  void HandleUpgrade(const http::RequestContextPtr& ctx, net::AnyStream stream);
  // /ws/v2/pingpong: a keepalive probe (Pulsar's WebSocketPingPongServlet), see PingPongSession.
  void HandlePingPong(const http::RequestContextPtr& ctx, net::AnyStream stream);

  PulsarWsDeps deps_;
  PulsarWsOptions options_;
  std::shared_ptr<ProducerNames> producer_names_;
  std::unique_ptr<SubscriptionRegistry> subscriptions_;
};

}  // namespace magnetar::pulsar_ws
