#include "cli/signals.h"

namespace magnetar::cli {

StopOnSignal::StopOnSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR2);  // our own wake-up at the end of the command
  pthread_sigmask(SIG_BLOCK, &set, &old_mask_);
  thread_ = std::thread([this, set] {
    while (true) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGUSR2 && done_) return;
      if (sig == SIGINT || sig == SIGTERM) {
        interrupted_ = true;
        source_.request_stop();
      }
    }
  });
  waiter_ = thread_.native_handle();
}

StopOnSignal::~StopOnSignal() {
  done_ = true;
  pthread_kill(waiter_, SIGUSR2);
  thread_.join();
  pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
}

}  // namespace magnetar::cli
