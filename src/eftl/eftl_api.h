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
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
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
  int session_retention_seconds = 300;  // how long a disconnected client may resume
  size_t max_retained_sessions = 100000;
};

// What a disconnected client's session leaves for its resume (spec §b.3 step 5): the delivery seq
// to continue from and the client op seqs already applied (so re-sent ops are acked, not applied
// twice).
struct ResumeState {
  std::string id_token;
  std::string user_id;
  uint64_t next_seq = 0;
  std::deque<int64_t> applied;  // oldest first, bounded
  uint64_t generation = 0;      // of the connection that left it
  std::chrono::steady_clock::time_point expires;
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

  std::atomic<uint64_t> next_generation{1};

  // Resume: Take removes and returns the state when the token and user match and it is not
  // expired; Save keeps it unless a newer connection of the client saved already.
  std::optional<ResumeState> TakeResume(const std::string& client_id, const std::string& id_token,
                                        const std::string& user_id);
  void SaveResume(const std::string& client_id, ResumeState state);

  // Reply addresses of live sessions (request/reply).
  void AddSession(const std::string& address, std::weak_ptr<Session> s);
  void RemoveSession(const std::string& address);
  std::shared_ptr<Session> FindSession(const std::string& address);

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::weak_ptr<Session>> sessions_;
  std::unordered_map<std::string, ResumeState> resume_;  // by client id; guarded by mutex_
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
