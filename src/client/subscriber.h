#pragma once

// RelaySubscriber: the relay's WebSocket push channel (/ws, relay-http.md §4 with Magnetar's
// corrections D10 and D15), kept alive across failures.
//
// It connects with the bearer subprotocols ("bearer", "bearer.<token>"), subscribes every topic
// with an offset, hands each message to the handler in order, pings the server (the server only
// counts client frames as activity), and when the connection drops it reconnects with backoff and
// subscribes again from the last message it delivered per topic, so nothing is skipped or
// repeated. A 4001 close (token expired or revoked) refreshes the token and reconnects at once.
//
// Where it starts: offset "last" (default) means "messages published from now on": before the
// first subscribe it reads the newest id of each topic (GET .../messages?limit=1&order=desc) and
// subscribes after it, so a reconnect before the first message still misses nothing. "first"
// replays everything retained; a message id replays what follows it.
//
// Delivery is at least once across a crash of the calling process (positions() is the state to
// save) and exactly once within a run: a message is delivered, then its position recorded; ids
// at or before a topic's position ("<hi>-<lo>" ids) are dropped.
//
// Threading: run() does all its work on the calling thread; stop() may be called from any thread.
// async_run() runs on the caller's executor (use a strand if it has several threads).

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "client/auth.h"
#include "client/tls_options.h"

namespace magnetar::client {

struct SubscriberEvent {
  enum class Kind {
    kConnected,     // subscribed (detail: the offsets used)
    kDisconnected,  // the connection ended (detail: why)
    kReconnecting,  // waiting `delay` before the next attempt
  };
  Kind kind;
  std::string detail;
  std::chrono::milliseconds delay{0};
};

struct SubscriberOptions {
  std::vector<std::string> topics;
  std::string offset = "last";  // "last", "first" or a message id (first connection only)
  std::string client_id = "magnetar-client";
  std::chrono::milliseconds ping_interval{20'000};
  // No frame at all for ping_interval + pong_timeout: the connection is dead, reconnect.
  std::chrono::milliseconds pong_timeout{10'000};
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds reconnect_initial{500};
  std::chrono::milliseconds reconnect_max{30'000};
  // Consecutive failed connection attempts before run() gives up (throws); empty = never.
  std::optional<int> max_reconnect_attempts;
  TlsOptions tls;
  std::function<void(const SubscriberEvent&)> on_event;
};

class RelaySubscriber {
 public:
  using Handler = std::function<void(const boost::json::object& message)>;

  RelaySubscriber(std::string relay_url, std::shared_ptr<TokenProvider> tokens,
                  SubscriberOptions options);
  ~RelaySubscriber();

  // Delivers messages until stop() / the stop token, or a fatal error: an AuthError (the token
  // cannot be refreshed), an Error for a refused subscription (e.g. an invalid topic name), a
  // handler exception (the message is not recorded as delivered), or max_reconnect_attempts.
  void run(Handler on_message, std::stop_token stop = {});
  boost::asio::awaitable<void> async_run(Handler on_message);
  void stop();

  // The last delivered (or starting) message id per topic.
  std::map<std::string, std::string> positions() const;

 private:
  struct Impl;
  friend struct Impl;
  boost::asio::awaitable<void> run_loop(Handler on_message, bool private_context);

  std::string relay_url_;
  std::shared_ptr<TokenProvider> tokens_;
  SubscriberOptions options_;
  mutable std::mutex mutex_;
  std::map<std::string, std::string> positions_;
  bool baseline_done_ = false;
  std::atomic<bool> stopping_{false};
  std::function<void()> stop_hook_;  // closes the live connection (guarded by mutex_)
};

}  // namespace magnetar::client
