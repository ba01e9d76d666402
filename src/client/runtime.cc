#include "client/runtime.h"

namespace magnetar::client::detail {

Runtime::Runtime() : work_(io_.get_executor()), thread_([this] { io_.run(); }) {}

Runtime::~Runtime() {
  work_.reset();
  io_.stop();
  if (thread_.joinable()) {
    if (on_runtime_thread()) {
      thread_.detach();  // destroyed from its own thread: it returns to run() and ends there
    } else {
      thread_.join();
    }
  }
}

}  // namespace magnetar::client::detail
