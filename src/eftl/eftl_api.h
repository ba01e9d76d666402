#pragma once

// EftlApi: the eFTL channel (spec/eftl.md) on its own listener (--eftl-port). Every WebSocket
// upgrade whose path names a channel and that offers the subprotocol v1.eftl.tibco.com becomes
// an eFTL session (session.h); the login op authenticates it against Magnetar's users.
//
// Identity: `user`/`password` of the login op, else HTTP Basic on the upgrade (clients that put
// user:password@ in the URL send it that way). A valid access JWT as the password works too
// (the user name, if given, must then be the token's). Password checks are rate limited like
// POST /auth/login (the check and its limiter come from server/, through PasswordCheck, since
// eftl/ may not use relay/).
//
// Topics: a channel's messages live in the logged-in user's namespace (the relay user's own
// topics); a string field `_dest` names the topic, else the channel's default topic, which is the
// channel name (docs/eftl.md).
//
// Lifecycle: built by server/ and Register()ed on the eFTL HttpService; must outlive the I/O
// threads.

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "auth/authenticator.h"
#include "auth/user.h"
#include "core/broker.h"
#include "core/cursor_store.h"
#include "core/kv_store.h"
#include "core/topic_catalog.h"
#include "eftl/durable.h"
#include "eftl/fanout.h"
#include "http/http_service.h"
#include "net/blocking_pool.h"
#include "ws/ws_connection.h"

namespace magnetar::eftl {

struct LoginOutcome {
  enum class Kind { kOk, kBadCredentials, kInactive, kRateLimited, kError } kind = Kind::kError;
  auth::User user;     // kOk
  std::string detail;  // kRateLimited, kError: why (safe to show: never the password)
};

// (client address, username, password) -> outcome. BLOCKING (password hashing): it is only
// called on the blocking pool.
using PasswordCheck =
    std::function<LoginOutcome(const std::string&, const std::string&, const std::string&)>;

struct EftlDeps {
  core::Broker& broker;
  core::TopicCatalog& topics;
  core::KvStore& kv;
  core::CursorStore& cursors;
  auth::Authenticator& authenticator;
  net::BlockingPool& blocking;
  net::ConnectionTracker& tracker;
  const Clock& clock;
  PasswordCheck password_check;
};

struct EftlOptions {
  ws::WsOptions ws;               // ws.max_message_bytes is the welcome's max_size
  int heartbeat_seconds = 30;     // the server sends a heartbeat this often
  int timeout_seconds = 90;       // a client silent this long is closed (4000)
  int login_timeout_seconds = 15; // a connection that has not logged in by then is closed (1008)
  int max_pending_acks = 1000;    // when the client gives none
  size_t max_subscriptions = 1000;    // per connection
  size_t max_backlog = 10000;         // live events held back by flow control, per connection
  size_t max_pending_requests = 1000; // per connection
  size_t max_map_keys = 10000;        // per key-value map
};

class Session;

// What every session shares. Thread-safe.
struct EftlShared {
  EftlShared(EftlDeps d, EftlOptions o)
      : deps(std::move(d)),
        options(o),
        fanout(deps.broker),
        durables(DurableEnv{deps.broker, deps.cursors, deps.blocking, deps.clock}) {}

  EftlDeps deps;
  EftlOptions options;
  FanoutRegistry fanout;
  DurableRegistry durables;
  std::atomic<uint64_t> next_handle{1};

  // Reply addresses of live sessions (request/reply).
  void AddSession(const std::string& address, std::weak_ptr<Session> s);
  void RemoveSession(const std::string& address);
  std::shared_ptr<Session> FindSession(const std::string& address);

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::weak_ptr<Session>> sessions_;
};

// Runs `work()` where the store allows (inline for an in-memory store, else on the blocking
// pool), then `then(result)` on `executor`.
template <typename Work, typename Then>
void RunStoreWork(EftlShared& shared, const boost::asio::any_io_executor& executor, Work work,
                  Then then) {
  if (!shared.deps.broker.store().blocking()) return then(work());
  shared.deps.blocking.Run(executor, std::move(work), std::move(then));
}

class EftlApi {
 public:
  EftlApi(EftlDeps deps, EftlOptions options);
  ~EftlApi();

  void Register(http::HttpService& service);

 private:
  void HandleUpgrade(const http::RequestContextPtr& ctx, net::AnyStream stream);

  std::shared_ptr<EftlShared> shared_;
};

// The channel named by an upgrade path ("/sales" -> "sales", "/" -> "eftl"), or nullopt when it
// cannot name a topic (then the upgrade gets 404, which clients report as "not found").
std::optional<std::string> ChannelFromPath(std::string_view path);
// "Basic base64(user:pass)" -> (user, pass).
std::optional<std::pair<std::string, std::string>> ParseBasicAuth(std::string_view header);
// A `_dest` value as a topic name: "TOPIC:x" / "QUEUE:x" -> "x".
std::string DestinationTopic(std::string_view dest);

}  // namespace magnetar::eftl
