#pragma once

// AsioScheduler: core::Scheduler on the I/O threads. One steady_timer per task, on the I/O
// context chosen by the topic's hash, so one topic's tasks always run on one executor (in the
// order of their times). Tasks still waiting when the I/O threads stop are dropped with their
// contexts; the core only schedules what storage can recover.

#include "common/clock.h"
#include "core/scheduler.h"
#include "net/io_pool.h"

namespace magnetar::server {

class AsioScheduler final : public core::Scheduler {
 public:
  AsioScheduler(net::IoPool& io, const Clock& clock) : io_(io), clock_(clock) {}

  void RunAt(UnixMicros when, const core::TopicKey& topic, std::function<void()> task) override;

 private:
  net::IoPool& io_;
  const Clock& clock_;
};

}  // namespace magnetar::server
