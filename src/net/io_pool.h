#pragma once

// IoPool: one io_context per worker thread. Each connection is created on one context and lives
// on it for its whole life, so connection state needs no locks.
//
// Lifecycle: construct, Start(), ... Stop() (lets handlers finish their current step), Join().

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace magnetar::net {

class IoPool {
 public:
  explicit IoPool(size_t threads);
  ~IoPool();

  void Start();
  void Stop();
  void Join();

  // Round-robin choice of the context for a new connection.
  boost::asio::io_context& Next();
  boost::asio::io_context& At(size_t i) { return *contexts_[i]; }
  size_t size() const { return contexts_.size(); }

 private:
  using WorkGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<WorkGuard> guards_;
  std::vector<std::thread> threads_;
  std::atomic<size_t> next_{0};
};

}  // namespace magnetar::net
