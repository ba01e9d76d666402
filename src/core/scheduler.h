#pragma once

// Scheduler: how the core runs something later without owning threads or timers (the core does
// no I/O). server/ implements it with one Asio timer per task on an I/O executor chosen by the
// topic, so one topic's tasks run on one executor; tests use a manual one.

#include <functional>

#include "common/clock.h"
#include "core/message.h"

namespace magnetar::core {

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Runs `task` once, at `when` (SystemClock micros) or as soon after as the executor allows;
  // at once when `when` is in the past. Tasks still waiting at shutdown are dropped: whatever
  // they would do must be recoverable from storage.
  virtual void RunAt(UnixMicros when, const TopicKey& topic, std::function<void()> task) = 0;
};

}  // namespace magnetar::core
