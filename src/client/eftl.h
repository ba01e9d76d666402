#pragma once

// The C++ eFTL client (spec eftl.md): the API of the eFTL client libraries, over the eFTL
// WebSocket protocol, against Magnetar's --eftl-port or any eFTL server.
//
//   EftlConnection conn("ws://host:9191/chan|ws://backup:9191/chan", options);   // blocks until welcomed
//   conn.subscribe({.matcher = R"({"type":"order"})"}, [](const EftlMessage& m) { ... });
//   conn.publish(EftlMessage().set_string("type", "order").set_long("qty", 5));  // waits for the ack
//
// Connecting: `urls` is a '|'-separated list of ws:// or wss:// URLs (path = channel,
// `user:password@` and `?clientId=` are honoured; URL credentials win over the options'); the
// list is shuffled (unless EftlOptions::shuffle_urls is false) and tried in turn until one
// welcomes the client. Credentials go in the login op and as HTTP Basic on the upgrade; a
// Magnetar access token works as the password.
//
// Reconnecting: a connection lost without a close (network failure), or closed with 1001 (server
// going away, as Magnetar does when it stops), 1006 or 1012, is re-established automatically: the
// next URL at once, then after each pass over the list a delay of 2^n s × jitter [0.5, 1.5)
// capped at auto_reconnect_max_delay, up to auto_reconnect_attempts passes. The client logs in
// again with its client_id and id_token; when the server resumes the session (welcome
// `_resume:"true"`) delivery seqs continue, redelivered events with a seq already seen are
// dropped, and every unanswered op (publish, request, reply, map op) is re-sent with its original
// seq (the server acknowledges one it had applied without applying it again). When it does not
// resume, those ops fail with code 11 and seq tracking restarts. Subscriptions are re-sent either
// way (durables continue from their stored position). Any other close ends the connection
// (on_disconnect) and fails the pending ops with code 11.
//
// Threading: one I/O thread per connection does all the work. Every method may be called from any
// thread. Callbacks (handlers, completions, options' callbacks) run on the I/O thread: they may
// call the *_async methods and acknowledge(), but not the blocking ones (std::logic_error), and
// must not destroy the connection. A message handler's return triggers the auto-ack.
//
// Errors: EftlError carries the eFTL code (11 publish failed / disconnected, 12 not authorized,
// 13/14 subscription / map not authorized, 21/22 subscription failed / invalid, 30 map failed,
// 40/41 request not authorized / failed, 99 request timeout, 4002 authentication failed,
// 10 connection failed). Bad arguments throw std::invalid_argument; a message over the server's
// max_size throws EftlMessageTooLarge before anything is sent.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/eftl_message.h"
#include "client/errors.h"
#include "client/tls_options.h"

namespace magnetar::client {

namespace detail {
class Runtime;
}

class EftlError : public Error {
 public:
  EftlError(int code, const std::string& message) : Error(message), code_(code) {}
  int code() const { return code_; }

  static constexpr int kConnectFailed = 10;
  static constexpr int kPublishFailed = 11;  // also: disconnected / not resumed
  static constexpr int kPublishNotAuthorized = 12;
  static constexpr int kSubscriptionNotAuthorized = 13;
  static constexpr int kMapNotAuthorized = 14;
  static constexpr int kSubscriptionFailed = 21;
  static constexpr int kSubscriptionInvalid = 22;
  static constexpr int kMapFailed = 30;
  static constexpr int kRequestNotAuthorized = 40;
  static constexpr int kRequestFailed = 41;
  static constexpr int kRequestTimeout = 99;
  static constexpr int kMessageTooBig = 1009;
  static constexpr int kAuthenticationFailed = 4002;

 private:
  int code_;
};

class EftlMessageTooLarge : public EftlError {
 public:
  explicit EftlMessageTooLarge(const std::string& message) : EftlError(kMessageTooBig, message) {}
};

enum class EftlState { kConnecting, kConnected, kReconnecting, kDisconnecting, kDisconnected };
const char* to_string(EftlState state);

struct EftlOptions {
  std::string username;  // the URL's user info wins
  std::string password;  // a Magnetar password or access token
  std::string client_id;  // the URL's ?clientId= wins; empty: the server assigns one
  int auto_reconnect_attempts = 256;
  std::chrono::milliseconds auto_reconnect_max_delay{30'000};
  std::chrono::milliseconds auto_reconnect_base_delay{1'000};  // the 2^n × base of the back-off
  int max_pending_acks = 0;  // 0: the server's limit
  std::chrono::milliseconds handshake_timeout{15'000};  // TCP + TLS + WebSocket upgrade
  std::chrono::milliseconds login_timeout{15'000};      // login op → welcome
  bool shuffle_urls = true;
  TlsOptions tls;
  std::function<void(EftlState)> on_state_change;
  // The connection ended for good (explicit disconnect: 1000; otherwise the close code or 1006).
  std::function<void(int code, const std::string& reason)> on_disconnect;
  // A connection-level error from the server (op 10), or a subscription error with no one waiting.
  std::function<void(int code, const std::string& reason)> on_error;
  // An automatic reconnect succeeded; `resumed` tells whether the server resumed the session.
  std::function<void(bool resumed)> on_reconnect;
};

enum class EftlAckMode { kAuto, kClient, kNone };
enum class EftlDurableType { kStandard, kShared, kLastValue };

struct EftlSubscribeOptions {
  std::string matcher;  // JSON text ({"field":"value","n":1,"present":true}); empty: everything
  std::string durable;  // durable name; empty: a live subscription
  std::optional<EftlDurableType> type;  // with `durable`; unset = standard
  std::string key;  // last-value: the key field's name
  EftlAckMode ack = EftlAckMode::kAuto;
};

// The outcome of an asynchronous operation: code 0 = success. `message` is the reply of a
// request and the value of a map get (nullopt when the key is not set).
struct EftlResult {
  int code = 0;
  std::string reason;
  std::optional<EftlMessage> message;
  bool ok() const { return code == 0; }
};

using EftlCallback = std::function<void(const EftlResult&)>;
using EftlMessageHandler = std::function<void(const EftlMessage&)>;

class EftlKvMap;

class EftlConnection {
 public:
  // Connects (see above) and blocks until welcomed. Throws std::invalid_argument for a bad URL
  // list, EftlError 4002 when the credentials are refused, EftlError 10 when no URL accepted.
  explicit EftlConnection(const std::string& urls, EftlOptions options = {});
  ~EftlConnection();  // disconnect()
  EftlConnection(const EftlConnection&) = delete;
  EftlConnection& operator=(const EftlConnection&) = delete;

  EftlState state() const;
  bool is_connected() const { return state() == EftlState::kConnected; }
  std::string client_id() const;  // the server's when it assigned one
  std::string url() const;        // the URL connected to (without credentials)

  // Graceful: sends DISCONNECT, closes, fails pending ops with 11. Blocks until closed.
  void disconnect();
  // Connects again after disconnect() or a given-up reconnect (blocking, like the constructor);
  // every subscription is sent again.
  void reconnect();

  // Publish; completes when the server has stored it (QoS ack).
  void publish_async(const EftlMessage& message, EftlCallback done = {});
  void publish(const EftlMessage& message);

  // Subscribe: returns the subscription id at once; `on_subscribed` gets the server's answer.
  std::string subscribe_async(const EftlSubscribeOptions& options, EftlMessageHandler on_message,
                              EftlCallback on_subscribed = {});
  // Blocks until the server confirms; EftlError (13, 21, 22) when it refuses.
  std::string subscribe(const EftlSubscribeOptions& options, EftlMessageHandler on_message);

  // Client ack mode only (std::invalid_argument otherwise): this message / every message of its
  // subscription up to and including this one.
  void acknowledge(const EftlMessage& message);
  void acknowledge_all(const EftlMessage& message);

  // Stop delivering but keep the durable (its unacked messages are redelivered later).
  void close_subscription(const std::string& id);
  void close_all_subscriptions();
  // Remove the subscription; a durable is deleted with its messages.
  void unsubscribe(const std::string& id);
  void unsubscribe_all();
  // Pause / resume delivery of one subscription (events arriving while stopped are dropped and
  // redelivered by the server for durables).
  void stop_subscription(const std::string& id);
  void start_subscription(const std::string& id);

  // Request / reply. The reply (or error 41, or 99 after `timeout`) goes to `on_reply`.
  void send_request_async(const EftlMessage& request, std::chrono::milliseconds timeout,
                          EftlCallback on_reply);
  EftlMessage send_request(const EftlMessage& request, std::chrono::milliseconds timeout);
  // `request` must be a received request (is_request()); std::invalid_argument otherwise.
  void send_reply_async(const EftlMessage& request, const EftlMessage& reply,
                        EftlCallback done = {});
  void send_reply(const EftlMessage& request, const EftlMessage& reply);

  // Key-value maps: a local handle (no wire traffic); remove_kv_map destroys the map on the server.
  EftlKvMap kv_map(std::string name);
  void remove_kv_map(const std::string& name);

  struct Impl;

 private:
  friend class EftlKvMap;
  std::unique_ptr<detail::Runtime> runtime_;
  std::shared_ptr<Impl> impl_;
};

class EftlKvMap {
 public:
  const std::string& name() const { return name_; }

  void set_async(const std::string& key, const EftlMessage& value, EftlCallback done = {});
  void set(const std::string& key, const EftlMessage& value);
  // The result's message is nullopt when the key is not set (not an error).
  void get_async(const std::string& key, EftlCallback done);
  std::optional<EftlMessage> get(const std::string& key);
  void remove_async(const std::string& key, EftlCallback done = {});
  void remove(const std::string& key);

 private:
  friend class EftlConnection;
  EftlKvMap(std::shared_ptr<EftlConnection::Impl> impl, std::string name)
      : impl_(std::move(impl)), name_(std::move(name)) {}
  std::shared_ptr<EftlConnection::Impl> impl_;
  std::string name_;
};

// The URL list parsed: each entry trimmed, checked (ws/wss, a host, a numeric port), credentials
// and ?clientId= taken out. Exposed for tests and tools; std::invalid_argument on a bad entry.
struct EftlUrl {
  bool tls = false;
  std::string host;
  std::uint16_t port = 80;
  std::string target;  // path (the channel) and the query, without clientId
  std::string username;
  std::string password;
  std::string client_id;
  std::string display() const;  // scheme://host:port/path, without credentials
};
std::vector<EftlUrl> parse_eftl_urls(const std::string& urls);

}  // namespace magnetar::client
