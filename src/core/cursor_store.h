#pragma once

// CursorStore: where the durable subscriptions' cursors (CursorState: mark-delete and the ids acked
// out of order) are kept, by (topic, subscription name). Engines implement it next to their
// MessageStore, so a restart (or another node) finds every subscription where it was left.
//
// Threading: implementations are thread-safe. Calls may block on storage I/O (a durable engine
// writes through to disk), so callers on an I/O thread should expect one storage round trip.

#include <string>

#include "common/status.h"
#include "core/durable_subscription.h"
#include "core/message.h"

namespace magnetar::core {

class CursorStore {
 public:
  virtual ~CursorStore() = default;

  // Creates or replaces the cursor of `subscription` on `topic`.
  virtual Status Save(const TopicKey& topic, const std::string& subscription,
                      const CursorState& state) = 0;
  // kNotFound when no cursor was saved (or it was deleted).
  virtual Result<CursorState> Load(const TopicKey& topic, const std::string& subscription) = 0;
  // Removes the cursor; deleting one that does not exist succeeds.
  virtual Status Delete(const TopicKey& topic, const std::string& subscription) = 0;
};

}  // namespace magnetar::core
