#pragma once

// RelayTransport (spec clients.md §A.5): publish (single and bulk, with retries and one
// Idempotency-Key per call), long-poll, and the per-topic cursor that makes polls resume where
// they stopped, optionally persisted to a file.
//
// Threading: thread-safe. One long-poll and any number of publishes may run at once from
// different threads (each takes its own keep-alive connection). All network I/O happens on the
// transport's own thread; the synchronous calls block the caller until it is done, the async_*
// calls resume the caller on its executor. Blocking token refreshes run on a helper thread.

#include <boost/asio/awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "client/auth.h"
#include "client/tls_options.h"

namespace magnetar::client {

namespace detail {
class Runtime;
class HttpClient;
class CancelState;
struct HttpRequest;
struct HttpResponse;
}  // namespace detail

// Called instead of a real wait between publish retries (tests record the delays). It runs on the
// transport's I/O thread, so it should return quickly.
using Sleeper = std::function<void(std::chrono::milliseconds)>;

// The publish retry loop (§A.5.2). Defaults match Python: 1 s doubling to 60 s, no jitter, no
// limit. max_attempts counts HTTP attempts (3 → 3 requests, 2 sleeps). max_elapsed gives up
// before a sleep that would end past it.
struct RetryPolicy {
  std::chrono::milliseconds initial{1000};
  std::chrono::milliseconds max_delay{60'000};
  double factor = 2.0;
  std::optional<int> max_attempts;
  std::optional<std::chrono::milliseconds> max_elapsed;
};

// When long_poll() moves the cursor.
enum class CursorCommit {
  // Python's behaviour: before long_poll() returns. A crash before the caller has handled the
  // messages skips them on resume (at most once).
  kBeforeReturn,
  // Only through commit() (or set_last_message_id): the caller commits after handling, so a
  // crash repeats messages instead of losing them (at least once). Until then, each long_poll()
  // asks again from the last committed id.
  kManual,
};

struct TransportOptions {
  std::chrono::milliseconds timeout{30'000};  // each publish attempt: connect, and send + receive
  std::optional<std::filesystem::path> cursor_path;
  RetryPolicy retry;
  Sleeper sleep;  // empty: a timer (cancellable through the stop token)
  std::function<std::chrono::steady_clock::time_point()> now;  // for max_elapsed; default steady
  TlsOptions tls;
  CursorCommit cursor_commit = CursorCommit::kBeforeReturn;
  // The long-poll HTTP wait is the requested timeout plus this (Python: 5 s).
  std::chrono::milliseconds long_poll_grace{5000};
};

class RelayTransport {
 public:
  // `tokens` gives bearer tokens (an AuthManager, or a test double).
  RelayTransport(std::string relay_url, std::shared_ptr<TokenProvider> tokens,
                 TransportOptions options = {});
  // Builds an AuthManager from `auth` (strategy selection of §A.3.4; std::invalid_argument when
  // nothing is configured).
  RelayTransport(std::string relay_url, AuthConfig auth, TransportOptions options = {});
  ~RelayTransport();
  RelayTransport(const RelayTransport&) = delete;
  RelayTransport& operator=(const RelayTransport&) = delete;

  // POST /api/v1/messages {topic, payload[, ttl][, metadata]} → {message_id, topic, timestamp}.
  // Retries 5xx and network failures per the policy, re-authenticates once on 401 (same
  // Idempotency-Key on every attempt). Throws TransportError (4xx, a second 401, attempts
  // exhausted, non-JSON answer, cancelled), AuthError, std::system_error.
  boost::json::object post_message(std::string_view topic, boost::json::object payload,
                                   std::optional<std::int64_t> ttl = {},
                                   std::optional<std::map<std::string, std::string>> metadata = {},
                                   std::stop_token stop = {});
  // POST /api/v1/messages/bulk {messages} (passed through verbatim) → the 207 body. Rejected
  // items are reported in the body, not thrown.
  boost::json::object post_bulk_messages(boost::json::array messages, std::stop_token stop = {});

  // POST /messages/poll {topics, timeout: clamp(timeout, 1, 60)[, since]}; waits up to
  // timeout + long_poll_grace. A timeout (or a stop request) returns no messages; a 401 is
  // retried once; every other failure throws TransportError("Failed to long poll: ...").
  std::vector<boost::json::object> long_poll(
      std::span<const std::string> topics, std::chrono::seconds timeout = std::chrono::seconds(30),
      std::stop_token stop = {});

  // The same operations for coroutines; Asio cancellation (e.g. a cancellation slot or
  // awaitable operators) interrupts them like the stop token does.
  boost::asio::awaitable<boost::json::object> async_post_message(
      std::string topic, boost::json::object payload, std::optional<std::int64_t> ttl = {},
      std::optional<std::map<std::string, std::string>> metadata = {});
  boost::asio::awaitable<boost::json::object> async_post_bulk_messages(boost::json::array messages);
  boost::asio::awaitable<std::vector<boost::json::object>> async_long_poll(
      std::vector<std::string> topics, std::chrono::seconds timeout = std::chrono::seconds(30));

  // Cursor tracking (§A.5.6). Changes are persisted at once when a cursor path is set.
  std::optional<std::string> last_message_id(std::string_view topic) const;
  std::map<std::string, std::string> tracked_message_ids() const;
  void set_last_message_id(std::string_view topic, std::string_view id);
  // One topic, or all when nullopt; always persists (even when nothing changed).
  void clear_tracked_message_ids(std::optional<std::string_view> topic = {});
  // Moves the cursor past `messages` (items with a non-empty topic and message_id); persists once.
  void commit(const std::vector<boost::json::object>& messages);

  const std::string& relay_url() const { return relay_url_; }
  TokenProvider& tokens() { return *tokens_; }
  // Drops idle connections. Calls in flight are not affected.
  void close();

 private:
  boost::asio::awaitable<boost::json::object> publish_op(std::string op, std::string target,
                                                         std::string body,
                                                         std::shared_ptr<detail::CancelState> c);
  boost::asio::awaitable<std::vector<boost::json::object>> long_poll_op(
      std::vector<std::string> topics, std::chrono::seconds timeout,
      std::shared_ptr<detail::CancelState> cancel);
  boost::asio::awaitable<detail::HttpResponse> retry_loop(const std::string& op,
                                                          const detail::HttpRequest& request,
                                                          std::shared_ptr<detail::CancelState> c,
                                                          int* attempts);
  boost::asio::awaitable<std::string> token(bool refresh);
  boost::asio::awaitable<void> sleep(std::chrono::milliseconds delay,
                                     std::shared_ptr<detail::CancelState> cancel);
  template <class T>
  T run_sync(std::function<boost::asio::awaitable<T>(std::shared_ptr<detail::CancelState>)> op,
             std::stop_token stop);
  template <class T>
  boost::asio::awaitable<T> run_async(
      std::function<boost::asio::awaitable<T>(std::shared_ptr<detail::CancelState>)> op);
  void advance_locked(std::string_view topic, std::string_view id);
  void persist_locked();
  std::chrono::steady_clock::time_point now() const;

  std::string relay_url_;
  std::shared_ptr<TokenProvider> tokens_;
  TransportOptions options_;
  std::unique_ptr<detail::Runtime> runtime_;
  std::unique_ptr<detail::Runtime> blocking_;  // token refreshes, off the I/O thread
  std::unique_ptr<detail::HttpClient> http_;
  mutable std::mutex cursor_mutex_;
  std::map<std::string, std::string> cursors_;
};

}  // namespace magnetar::client
