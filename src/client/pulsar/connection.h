#pragma once

// One TCP connection to one Pulsar broker (clients.md §B.2-B.4, B.6), internal.
//
// Lifecycle: start() spawns the run loop, which connects, sends CONNECT and serves the socket
// until it drops, then tears down (pending requests fail with kConnectionLost, every registered
// producer and consumer hears on_connection_lost() and re-registers by itself) and reconnects
// after Backoff::next. The delay resets when CONNECTED arrives, not on TCP connect, so a broker
// that refuses the token is not hammered. stop() ends the loop for good.
//
// TLS (pulsar+ssl://): the socket carries an SSL stream, handshaken (server name and, unless
// verification is off, the certificate's host name checked) before CONNECT.
//
// Threading: everything runs on the client's single I/O thread; no member is touched from
// another thread, so there is no lock. Each socket generation has its own read buffer, write loop
// and ping loop, and a loop from an older generation never touches the new socket.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "client/pulsar/pulsar_client.h"
#include "pulsar/codec/frame.h"

namespace magnetar::client::pulsar::detail {

namespace proto = magnetar::pulsar::proto;
using Clock = std::chrono::steady_clock;

// What a producer or consumer hears from its connection (routed by id).
class ProducerSink {
 public:
  virtual ~ProducerSink() = default;
  virtual void on_receipt(const proto::CommandSendReceipt& receipt) = 0;
  virtual void on_send_error(const proto::CommandSendError& error) = 0;
  virtual void on_closed_by_broker() = 0;
  virtual void on_connection_lost() = 0;
};

class ConsumerSink {
 public:
  virtual ~ConsumerSink() = default;
  virtual void on_message(magnetar::pulsar::Frame& frame) = 0;
  virtual void on_active_change(bool active) = 0;
  virtual void on_closed_by_broker() = 0;
  virtual void on_connection_lost() = 0;
};

// Timers of coroutines waiting for a state change; notify() wakes them all (they re-check).
class Waiters {
 public:
  class Guard {
   public:
    Guard(Waiters& w, boost::asio::steady_timer* t) : w_(w), it_(w.timers_.insert(w.timers_.end(), t)) {}
    ~Guard() { w_.timers_.erase(it_); }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    Waiters& w_;
    std::list<boost::asio::steady_timer*>::iterator it_;
  };
  void notify() {
    for (auto* t : timers_) t->cancel();
  }

 private:
  std::list<boost::asio::steady_timer*> timers_;
};

struct TokenSource {
  std::string fixed;
  std::shared_ptr<TokenProvider> provider;
  // Runs provider->get_token() off the I/O thread.
  std::function<boost::asio::awaitable<std::string>(bool refresh)> fetch;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class State { kDisconnected, kHandshaking, kConnected, kStopped };

  // `tls`: the client's TLS context, required when `url` is pulsar+ssl:// (outlives this).
  Connection(boost::asio::any_io_executor ex, ServiceUrl url, const ClientOptions& options,
             std::shared_ptr<TokenSource> tokens, boost::asio::ssl::context* tls = nullptr);

  void start();
  void stop();
  // Drops the current socket (the run loop reconnects); `why` is logged.
  void drop(const std::string& why);

  const ServiceUrl& url() const { return url_; }
  State state() const { return state_; }
  std::optional<uint32_t> max_message_size() const { return max_message_size_; }

  // Waits until CONNECTED (or throws: kTimeout at `deadline` naming the last failure,
  // kServerError when the broker refused the handshake, kClosed after stop()).
  boost::asio::awaitable<void> wait_connected(Clock::time_point deadline);

  uint64_t next_request_id() { return next_request_id_++; }
  // Sends `command` (its request id already set to `request_id`) and waits for the answer:
  // ERROR throws kServerError, a timeout throws kTimeout (and forgets the request), a drop
  // kConnectionLost. Fails at once with kDisconnected when not connected. `on_reply` runs inline
  // when the answer is dispatched, before any later frame is handled.
  boost::asio::awaitable<proto::BaseCommand> request(
      uint64_t request_id, proto::BaseCommand command, Millis timeout,
      std::function<void(const proto::BaseCommand&)> on_reply);
  // Fire-and-forget (FLOW, ACK, ...): dropped when not connected. False when dropped.
  bool send(const proto::BaseCommand& command);
  // A pre-encoded frame (SEND). False when not connected.
  bool write_frame(std::string_view frame);

  void register_producer(uint64_t id, std::weak_ptr<ProducerSink> sink);
  void register_consumer(uint64_t id, std::weak_ptr<ConsumerSink> sink);
  void unregister_producer(uint64_t id) { producers_.erase(id); }
  void unregister_consumer(uint64_t id) { consumers_.erase(id); }

 private:
  struct Pending {
    explicit Pending(boost::asio::any_io_executor ex) : timer(ex) {}
    boost::asio::steady_timer timer;
    bool done = false;
    std::optional<proto::BaseCommand> reply;
    std::optional<PulsarError> error;
    std::function<void(const proto::BaseCommand&)> on_reply;
  };
  // One socket generation: TCP, plus TLS over it for pulsar+ssl://.
  struct Socket {
    Socket(boost::asio::any_io_executor ex, boost::asio::ssl::context* tls) : tcp(std::move(ex)) {
      if (tls) ssl = std::make_unique<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>>(tcp, *tls);
    }
    boost::asio::ip::tcp::socket tcp;
    std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> ssl;
  };

  boost::asio::awaitable<void> run(std::shared_ptr<Connection> self);
  boost::asio::awaitable<void> serve(std::shared_ptr<Socket> socket, uint64_t generation);
  boost::asio::awaitable<void> write_loop(std::shared_ptr<Connection> self,
                                          std::shared_ptr<Socket> socket, uint64_t generation);
  boost::asio::awaitable<void> ping_loop(std::shared_ptr<Connection> self,
                                         std::shared_ptr<boost::asio::steady_timer> timer,
                                         uint64_t generation);
  boost::asio::awaitable<void> answer_challenge(std::shared_ptr<Connection> self,
                                                uint64_t generation);
  boost::asio::awaitable<std::string> token(bool refresh);
  void dispatch(magnetar::pulsar::Frame& frame);
  void complete(uint64_t request_id, proto::BaseCommand&& reply);
  void fail(uint64_t request_id, PulsarError error);
  void teardown(const std::string& why);
  void write_raw(std::string_view bytes);

  boost::asio::any_io_executor ex_;
  ServiceUrl url_;
  ClientOptions options_;
  std::shared_ptr<TokenSource> tokens_;
  boost::asio::ssl::context* tls_;
  Backoff backoff_;
  Millis prev_backoff_{0};

  State state_ = State::kDisconnected;
  uint64_t generation_ = 0;
  std::shared_ptr<Socket> socket_;
  std::string out_;
  bool writing_ = false;
  bool dropped_ = false;  // drop() closed this socket (last_failure_ says why)
  bool received_since_tick_ = false;
  bool ping_outstanding_ = false;
  std::shared_ptr<boost::asio::steady_timer> ping_timer_;
  std::shared_ptr<boost::asio::steady_timer> sleep_timer_;
  std::optional<uint32_t> max_message_size_;
  std::optional<PulsarError> handshake_error_;
  std::string last_failure_ = "not connected yet";
  uint64_t next_request_id_ = 1;
  std::map<uint64_t, std::shared_ptr<Pending>> pending_;
  std::map<uint64_t, std::weak_ptr<ProducerSink>> producers_;
  std::map<uint64_t, std::weak_ptr<ConsumerSink>> consumers_;
  Waiters ready_waiters_;
};

}  // namespace magnetar::client::pulsar::detail
