#pragma once

// Turns SIGINT and SIGTERM into a stop request for the running command, so `poll --follow`,
// `subscribe` and `login --device` end cleanly (and publish retries stop sleeping). Construct it
// before any thread exists: the signals are blocked in every thread and received by one.

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <stop_token>
#include <thread>

namespace magnetar::cli {

class StopOnSignal {
 public:
  StopOnSignal();
  ~StopOnSignal();
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;

  std::stop_token token() const { return source_.get_token(); }
  bool interrupted() const { return interrupted_; }

 private:
  sigset_t old_mask_;
  std::stop_source source_;
  std::atomic<bool> interrupted_{false};
  std::atomic<bool> done_{false};
  pthread_t waiter_{};
  std::thread thread_;
};

}  // namespace magnetar::cli
