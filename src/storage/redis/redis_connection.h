#pragma once

// RedisConnection: one pipelined connection to Redis over Boost.Asio, with hiredis's RESP code
// for the bytes (redisFormatCommandArgv to encode, redisReader to parse). Commands are written as
// they come (several per write when they pile up) and replies are matched to callbacks in FIFO
// order, as Redis answers in order. Nothing in here blocks.
//
// Lifecycle: Start() connects, sends the prelude (AUTH, SELECT, then the owner's commands such as
// SCRIPT LOAD) and only then accepts commands. When the connection fails, every command waiting
// for a reply completes with kUnavailable, commands sent while down fail at once with the reason,
// and the connection retries with backoff (100 ms doubling to 5 s) until Stop(). A Redis that
// stops answering (stopped, partitioned) counts as failed when the oldest command has waited
// kReplyTimeout for its reply.
//
// TLS (rediss://): with a client context, every connection does a TLS handshake (server name
// sent, the certificate verified against the context's CAs and the host name) before the prelude.
//
// Pub/sub mode (hooks.on_push set): after the prelude, every reply goes to on_push, and Send()'s
// callback is not used (SUBSCRIBE's confirmations arrive as pushes).
//
// Threading: every handler runs on the io_context given, which must be run by exactly one thread
// (it is the connection's strand). Send(), Stop(), health() may be called from any thread.
// Callbacks run on that io thread: they must not wait for another reply of this connection.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "storage/redis/redis_url.h"

namespace boost::asio::ssl {
class context;
}

namespace magnetar::storage {

struct RedisReply {
  enum class Type { kString, kArray, kInteger, kNil, kStatus, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  long long integer = 0;
  std::vector<RedisReply> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
  bool is_nil() const { return type == Type::kNil; }
};

using RedisArgs = std::vector<std::string>;
using ReplyCallback = std::function<void(Result<RedisReply>)>;

class RedisConnection : public std::enable_shared_from_this<RedisConnection> {
 public:
  static constexpr std::chrono::seconds kReplyTimeout{10};
  // Connecting, the TLS handshake and the prelude together; a server that accepts but never
  // answers (or a plain Redis behind rediss://) fails the attempt after this.
  static constexpr std::chrono::seconds kSetupTimeout{2};

  struct Hooks {
    std::function<void(RedisReply)> on_push;  // pub/sub mode when set
    std::function<void()> on_ready;           // after each successful (re)connection's prelude
  };

  // `tls`: null for redis://, the client context for rediss://.
  RedisConnection(boost::asio::io_context& io, RedisEndpoint endpoint, std::string name,
                  std::vector<RedisArgs> prelude, Hooks hooks,
                  std::shared_ptr<boost::asio::ssl::context> tls = nullptr);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  void Start();
  void Stop();

  // Queues a command. `done` (may be empty) gets the reply, an error reply included (it is a
  // RedisReply of type kError), or kUnavailable when the connection is down or fails first.
  void Send(RedisArgs args, ReplyCallback done);

  // OK while connected and past the prelude; else kUnavailable with the reason.
  Status health() const;

 private:
  struct Impl;
  void Connect();
  void OnConnected(uint64_t generation);
  void StartSession(uint64_t generation);
  void Write(uint64_t generation);
  void Read(uint64_t generation);
  void Dispatch(RedisReply reply);
  void Fail(uint64_t generation, const std::string& reason);
  void Enqueue(const RedisArgs& args, ReplyCallback done);
  void SetHealth(Status status);
  void ArmReplyTimer(uint64_t generation);

  struct Waiting {
    ReplyCallback done;
    std::chrono::steady_clock::time_point sent;
  };

  boost::asio::io_context& io_;
  const RedisEndpoint endpoint_;
  const std::string name_;
  const std::vector<RedisArgs> prelude_;
  const Hooks hooks_;
  const std::shared_ptr<boost::asio::ssl::context> tls_context_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer reply_timer_;
  boost::asio::steady_timer setup_timer_;
  std::string stage_;  // what the current attempt is doing, for the set-up timeout's message
  std::unique_ptr<Impl> impl_;  // the hiredis reader and the TLS stream

  // Only on the io thread:
  uint64_t generation_ = 0;  // bumped on every (re)connection: stale handlers return early
  bool ready_ = false;       // past the prelude
  bool stopped_ = false;
  size_t prelude_left_ = 0;
  std::deque<Waiting> waiting_;  // FIFO of commands sent, awaiting replies
  bool reply_timer_armed_ = false;
  std::string out_;                    // encoded, not yet handed to the socket
  std::string writing_;                // the buffer of the write in flight
  bool write_in_flight_ = false;
  std::vector<char> read_buffer_;
  std::chrono::milliseconds backoff_{100};

  mutable std::mutex health_mutex_;
  Status health_;  // guarded by health_mutex_
};

}  // namespace magnetar::storage
