#pragma once

// Broker: the front ends' single entry point to topics. It appends through the MessageStore and
// fans every appended message out to the topic's live subscribers, in id order.
//
// Threading: all methods are thread-safe. Per topic, a publish lock serialises appends so that ids
// and fan-out stay in the same order; a separate fan-out lock guards the subscriber list, so
// (un)subscribing never waits for a store append. Subscribers are called under the fan-out lock
// (see SubscriberSink) and must only post.
//
// Several nodes (a ClusterBus given): fan-out comes only from the bus, which delivers every
// node's appends to a topic in the store's id order; a topic is watched while it has live
// subscribers on this node. Without a bus, fan-out happens in the append callback.
//
// Lifecycle: created by server/ after the store (and bus), destroyed after every front end has
// stopped; the bus must stop delivering before the Broker is destroyed.

#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "core/cluster_bus.h"
#include "core/message_store.h"
#include "core/subscriber.h"

namespace magnetar::core {

class Broker {
 public:
  Broker(MessageStore& store, const Clock& clock, ClusterBus* bus = nullptr);
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  MessageStore& store() { return store_; }
  const Clock& clock() const { return clock_; }

  // Appends and then fans out. `done` gets the stored messages (with ids) or the store's error,
  // after the append is durable at the store's level and after fan-out, with no broker lock held
  // (it may publish again). With a store that completes inline, `done` runs before Publish
  // returns.
  void Publish(const TopicKey& topic, std::vector<DraftPtr> drafts, AppendCallback done);

  // Adds a live subscriber. Returns the id of the newest message appended before the subscriber
  // was added: every message after it reaches the sink, none at or before it does. That makes
  // "replay history up to the returned id, then go live" gap-free and duplicate-free.
  MessageId Subscribe(const TopicKey& topic, std::shared_ptr<SubscriberSink> sink);
  void Unsubscribe(const TopicKey& topic, const SubscriberSink* sink);

  size_t SubscriberCount(const TopicKey& topic) const;

  // Drops a topic's messages; live subscribers stay attached (the name may be re-created).
  Status DeleteTopicData(const TopicKey& topic);

 private:
  struct Hub {
    std::mutex publish_mutex;  // held across Append for stores that complete inline
    mutable std::mutex fanout_mutex;
    MessageId last_fanned_out;  // guarded by fanout_mutex
    std::vector<std::shared_ptr<SubscriberSink>> sinks;  // guarded by fanout_mutex
    bool watched = false;  // the bus delivers this topic; guarded by fanout_mutex
  };

  std::shared_ptr<Hub> HubFor(const TopicKey& topic);
  std::shared_ptr<Hub> FindHub(const TopicKey& topic) const;
  static void FanOut(Hub& hub, const std::vector<MessagePtr>& messages);

  void Watch(const TopicKey& topic, const std::shared_ptr<Hub>& hub);

  MessageStore& store_;
  const Clock& clock_;
  ClusterBus* const bus_;
  mutable std::shared_mutex hubs_mutex_;
  std::unordered_map<TopicKey, std::shared_ptr<Hub>, TopicKeyHash> hubs_;
};

}  // namespace magnetar::core
