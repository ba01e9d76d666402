#pragma once

// RedisEngine: what the Redis stores share. One io thread runs the pipelined command connection
// (and the cluster bus's pub/sub connection); one completion thread runs append callbacks, in
// reply order, so that a callback may make synchronous store calls without waiting on the io
// thread it would block.
//
// Synchronous calls (Call, CallMany) send through the connection and wait for the reply; they are
// refused on the io thread (they would wait for themselves). The store interfaces they serve are
// synchronous by contract (core/ and auth/), so such a call costs its caller one Redis round trip.
//
// Lifecycle: Open() connects and checks Redis (refusing a server it cannot reach, with the reason,
// so the process exits at start); Stop() closes the connections (waiting commands fail with
// kUnavailable, their callbacks run) and joins the threads. Idempotent; the destructor calls it.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "storage/redis/redis_connection.h"
#include "storage/redis/redis_scripts.h"
#include "storage/redis/redis_url.h"

namespace magnetar::storage {

struct RedisOptions {
  RedisEndpoint endpoint;
  std::chrono::milliseconds connect_timeout{3000};  // at start: Redis down is a refusal
  std::chrono::milliseconds call_timeout{10000};  // a synchronous call waits this long at most
  // rediss:// only. The CAs that sign Redis' certificate (default: the system's); a client
  // certificate and key when Redis asks for one (tls-auth-clients, Redis' default).
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
};

class RedisEngine : public std::enable_shared_from_this<RedisEngine> {
 public:
  static Result<std::shared_ptr<RedisEngine>> Open(const RedisOptions& options,
                                                   const Clock& clock);
  ~RedisEngine();
  RedisEngine(const RedisEngine&) = delete;
  RedisEngine& operator=(const RedisEngine&) = delete;

  const Clock& clock() const { return clock_; }
  const RedisEndpoint& endpoint() const { return options_.endpoint; }
  boost::asio::io_context& io() { return io_; }
  // The TLS client context for rediss:// (null for redis://), for the engine's other connections.
  const std::shared_ptr<boost::asio::ssl::context>& tls() const { return tls_; }

  // Asynchronous: `done` runs on the io thread.
  void Send(RedisArgs args, ReplyCallback done) { commands_->Send(std::move(args), std::move(done)); }
  // Synchronous. An error reply comes back as a RedisReply of type kError (the caller decides
  // what it means); a lost connection or a timeout as kUnavailable.
  Result<RedisReply> Call(RedisArgs args);
  std::vector<Result<RedisReply>> CallMany(std::vector<RedisArgs> commands);
  // Runs `fn` on the completion thread (FIFO).
  void Complete(std::function<void()> fn);
  // Runs `fn` on the io thread after every (re)connection of the command connection.
  void OnCommandsReady(std::function<void()> fn);

  // EVALSHA args for a script.
  static RedisArgs Eval(const redis::Script& script, std::vector<std::string> keys,
                        std::vector<std::string> args);

  Status Health() const { return commands_->health(); }
  bool OnIoThread() const { return std::this_thread::get_id() == io_thread_id_; }

  void Stop();

 private:
  RedisEngine(const RedisOptions& options, const Clock& clock,
              std::shared_ptr<boost::asio::ssl::context> tls);

  const RedisOptions options_;
  const Clock& clock_;
  const std::shared_ptr<boost::asio::ssl::context> tls_;
  boost::asio::io_context io_;
  boost::asio::io_context completions_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> io_work_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> completions_work_;
  std::shared_ptr<RedisConnection> commands_;
  std::vector<std::function<void()>> ready_listeners_;  // io thread only
  std::thread io_thread_;
  std::thread completion_thread_;
  std::thread::id io_thread_id_;
  std::once_flag stop_once_;
};

// Turns an error reply into a Status (kUnavailable: Redis refused the command, e.g. OOM or
// MISCONF when it cannot persist, or a LOADING Redis).
Status ReplyError(const RedisReply& reply);

}  // namespace magnetar::storage
