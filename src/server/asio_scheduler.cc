#include "server/asio_scheduler.h"

#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <memory>

namespace magnetar::server {

void AsioScheduler::RunAt(UnixMicros when, const core::TopicKey& topic,
                          std::function<void()> task) {
  boost::asio::io_context& context = io_.At(core::TopicKeyHash()(topic) % io_.size());
  const auto delay = std::chrono::microseconds(std::max<UnixMicros>(0, when - clock_.Now()));
  auto timer = std::make_shared<boost::asio::steady_timer>(context, delay);
  // The handler owns the timer: both go when it runs, or with the context at shutdown.
  timer->async_wait([timer, task = std::move(task)](boost::system::error_code ec) {
    if (!ec) task();
  });
}

}  // namespace magnetar::server
