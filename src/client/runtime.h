#pragma once

// The thread a synchronous client object does its I/O on (internal).
//
// RelayTransport and HttpRelayClient implement every operation once, as a coroutine on their
// Runtime's io_context. A synchronous call spawns the coroutine there and blocks until it ends
// (so a long-poll and publishes from other threads run concurrently on one transport); an async
// call spawns it there and resumes the caller on its own executor. Keeping all I/O of one object
// on one thread means its connection pool needs no lock.
//
// Lifetime: the thread starts on construction and is joined by the destructor, which first lets
// pending work finish being cancelled.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <stdexcept>
#include <thread>

namespace magnetar::client::detail {

class Runtime {
 public:
  Runtime();
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  boost::asio::any_io_executor executor() { return io_.get_executor(); }
  bool on_runtime_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

  // Runs `op` on the runtime thread and waits for it; rethrows what it throws. Calling this from
  // the runtime thread itself would deadlock, so it throws std::logic_error instead.
  template <class T>
  T run(boost::asio::awaitable<T> op) {
    if (on_runtime_thread()) {
      throw std::logic_error("magnetar client: blocking call made on the client's I/O thread");
    }
    auto future = boost::asio::co_spawn(io_, std::move(op), boost::asio::use_future);
    return future.get();
  }

  // Runs `op` on the runtime thread and resumes the caller on its own executor.
  template <class T>
  boost::asio::awaitable<T> await(boost::asio::awaitable<T> op) {
    co_return co_await boost::asio::co_spawn(io_, std::move(op), boost::asio::use_awaitable);
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

// Runs `op` on a private io_context on the calling thread (for one-off calls: logins, refreshes,
// the device flow), so they never depend on another object's thread.
template <class T>
T run_blocking(boost::asio::awaitable<T> op) {
  boost::asio::io_context io;
  auto future = boost::asio::co_spawn(io, std::move(op), boost::asio::use_future);
  io.run();
  return future.get();
}

// (Named coroutines rather than lambdas: g++ 12 miscompiles lambda coroutines handed to
// co_spawn as temporaries.)

}  // namespace magnetar::client::detail
