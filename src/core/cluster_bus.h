#pragma once

// ClusterBus: how one node learns about messages other nodes append to a shared store (several
// Magnetar nodes on one Redis). The core defines it; a storage engine that can be shared
// implements it (storage/redis: Redis pub/sub wakes a per-topic stream read).
//
// With a bus, the Broker fans out only what the bus delivers, its own node's appends included:
// that gives every node one order per topic, the store's id order, whoever published.
//
// Threading: thread-safe. Watch and Unwatch never block (they may be called under the Broker's
// locks). Deliveries for one topic come one at a time, in id order, on a thread of the bus; the
// callback must not block (the Broker's fan-out only posts).

#include <functional>
#include <vector>

#include "core/message.h"

namespace magnetar::core {

class ClusterBus {
 public:
  using Delivery = std::function<void(std::vector<MessagePtr>)>;

  virtual ~ClusterBus() = default;

  // Delivers every message of `topic` with an id greater than `after`, from any node, in id order,
  // without gaps or repeats (a lost connection is caught up from the store when it comes back),
  // until Unwatch. Watching a watched topic replaces the earlier watch.
  virtual void Watch(const TopicKey& topic, MessageId after, Delivery deliver) = 0;
  virtual void Unwatch(const TopicKey& topic) = 0;
};

}  // namespace magnetar::core
