#pragma once

// Live fan-out of a topic's messages to eFTL subscriptions, through one MatcherIndex per topic.
//
// FanoutRegistry keeps one TopicFanout per topic that has at least one eFTL subscription; the
// TopicFanout is the topic's single core::SubscriberSink, so a message is decoded into an eFTL
// message and encoded once, whatever the number of subscriptions, and only the matching ones
// (found through the index) get it: each gets a post to its session's connection.
//
// Requests (op 13) are not stored: Dispatch() runs the same matching for a message that did not
// come from the broker and reports how many subscriptions took it.
//
// Threading: thread-safe. Lock order: registry mutex, then the broker's locks (Subscribe /
// Unsubscribe), then a fanout's mutex; OnMessage runs under the broker's fan-out lock and takes
// only the fanout's mutex, and targets only post.

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/broker.h"
#include "eftl/codec.h"
#include "eftl/matcher_index.h"

namespace magnetar::eftl {

using BodyPtr = std::shared_ptr<const std::string>;

// A request's addressing, carried to the responders' events.
struct RequestInfo {
  std::string reply_to;
  uint64_t req = 0;
};

// A session's side of a subscription. Called with locks held: post, nothing else.
class DeliveryTarget {
 public:
  virtual ~DeliveryTarget() = default;
  virtual void PostDelivery(uint64_t handle, BodyPtr body, std::optional<RequestInfo> request) = 0;
};

// The eFTL view of any stored message (docs/eftl.md): a JSON payload through the lenient decoder
// (relay messages; eFTL ones read back exactly), a binary one as JSON if it is a JSON object,
// else as an opaque field "_data".
Message FromStored(const core::Message& m);

class TopicFanout;

class FanoutRegistry {
 public:
  explicit FanoutRegistry(core::Broker& broker) : broker_(broker) {}
  ~FanoutRegistry();

  void Add(const core::TopicKey& topic, uint64_t handle, std::shared_ptr<const Matcher> matcher,
           std::weak_ptr<DeliveryTarget> target);
  void Remove(const core::TopicKey& topic, uint64_t handle);
  // Delivers `body` (the encoding of `message`) to the matching subscriptions of `topic` as a
  // request; returns how many took it.
  size_t Dispatch(const core::TopicKey& topic, const Message& message, BodyPtr body,
                  const RequestInfo& request);

 private:
  core::Broker& broker_;
  std::mutex mutex_;
  std::unordered_map<core::TopicKey, std::shared_ptr<TopicFanout>, core::TopicKeyHash> topics_;
};

}  // namespace magnetar::eftl
