#pragma once

// BlockingPool: threads for work that must never run on an I/O thread (password hashing, disk
// syncs, blocking store reads). Post work; the work posts its result back to the caller's executor.

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <utility>

namespace magnetar::net {

class BlockingPool {
 public:
  explicit BlockingPool(size_t threads) : pool_(threads == 0 ? 1 : threads) {}
  ~BlockingPool() { Stop(); }

  template <typename F>
  void Post(F&& work) {
    boost::asio::post(pool_, std::forward<F>(work));
  }

  // Runs `work` on the pool, then `then(result)` on `executor`.
  template <typename Executor, typename Work, typename Then>
  void Run(Executor executor, Work work, Then then) {
    boost::asio::post(pool_, [executor, work = std::move(work), then = std::move(then)]() mutable {
      auto result = work();
      boost::asio::post(executor, [then = std::move(then), result = std::move(result)]() mutable {
        then(std::move(result));
      });
    });
  }

  void Stop() {
    pool_.join();
  }

 private:
  boost::asio::thread_pool pool_;
};

}  // namespace magnetar::net
