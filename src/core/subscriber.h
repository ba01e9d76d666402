#pragma once

#include "core/message.h"

namespace magnetar::core {

// Something that wants a topic's new messages as they are appended: a relay WebSocket, a
// long-poll waiter, a Pulsar consumer. The hub calls OnMessage in id order, from whichever thread
// completed the append, with the topic's fan-out lock held: implementations must not block and
// must not call back into the hub. The usual body is "post to my connection's executor".
class SubscriberSink {
 public:
  virtual ~SubscriberSink() = default;
  virtual void OnMessage(const MessagePtr& message) = 0;
};

}  // namespace magnetar::core
