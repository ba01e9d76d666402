#pragma once

// Broker: the front ends' single entry point to topics. It appends through the MessageStore and
// fans every appended message out to the topic's live subscribers, in id order.
//
// Delayed messages (Message::deliver_at in the future) are stored at once but fanned out at their
// time, through the Scheduler: a live subscriber gets them then, after messages with higher ids.
//
// Several nodes (a ClusterBus given): fan-out comes only from the bus, which delivers every
// node's appends to a topic in the store's id order; a topic is watched while it has live
// subscribers on this node. Without a bus, fan-out happens in the append callback.
//
// Threading: all methods are thread-safe. Per topic, a publish lock serialises appends so that ids
// and fan-out stay in the same order; a separate fan-out lock guards the subscriber list, so
// (un)subscribing never waits for a store append. Subscribers are called under the fan-out lock
// (see SubscriberSink) and must only post.
//
// Lifecycle: created by server/ after the store (and bus), destroyed after every front end has
// stopped; the bus must stop delivering before the Broker is destroyed.

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "core/cluster_bus.h"
#include "core/message_store.h"
#include "core/producer_sequences.h"
#include "core/scheduler.h"
#include "core/subscriber.h"

namespace magnetar::core {

class Broker {
 public:
  // `scheduler` runs the late fan-out of delayed messages; without one (tests), a delayed
  // message is fanned out at once (durable subscriptions still hold it until its time).
  Broker(MessageStore& store, const Clock& clock, Scheduler* scheduler = nullptr,
         ClusterBus* bus = nullptr);
  Broker(MessageStore& store, const Clock& clock, ClusterBus* bus)
      : Broker(store, clock, nullptr, bus) {}
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  MessageStore& store() { return store_; }
  const Clock& clock() const { return clock_; }

  // Appends and then fans out. `done` gets the stored messages (with ids) or the store's error,
  // after the append is durable at the store's level and after fan-out, with no broker lock held
  // (it may publish again). With a store that completes inline, `done` runs before Publish
  // returns.
  //
  // De-duplication (ProducerSequences): a draft with a producer name whose sequence id is not
  // above the highest one that producer already sent on this topic is not stored; its place in
  // `done`'s vector holds a message with `duplicate` set and the original's id (or Min()).
  void Publish(const TopicKey& topic, std::vector<DraftPtr> drafts, AppendCallback done);

  // The highest sequence id `producer` sent on `topic` (for Pulsar's last_sequence_id, and where
  // a reconnecting producer continues); nullopt when the broker knows none.
  std::optional<uint64_t> LastSequence(const TopicKey& topic, const std::string& producer);
  // Drops the de-duplication state of a producer whose name can never come back (a generated
  // one, when its producer closes).
  void ForgetProducer(const TopicKey& topic, const std::string& producer);

  // Adds a live subscriber. Returns the id of the newest message appended before the subscriber
  // was added: every message after it reaches the sink, none at or before it does. That makes
  // "replay history up to the returned id, then go live" gap-free and duplicate-free. (A delayed
  // message is the exception: it reaches live sinks when it is due, whatever its id.)
  MessageId Subscribe(const TopicKey& topic, std::shared_ptr<SubscriberSink> sink);
  void Unsubscribe(const TopicKey& topic, const SubscriberSink* sink);

  size_t SubscriberCount(const TopicKey& topic) const;

  // Drops a topic's messages; live subscribers stay attached (the name may be re-created).
  Status DeleteTopicData(const TopicKey& topic);

 private:
  struct Hub {
    TopicKey key;
    std::mutex publish_mutex;  // held across Append for stores that complete inline
    // Not publish_mutex: the append callback updates it, and may run inline under publish_mutex.
    std::mutex sequences_mutex;
    ProducerSequences sequences;  // guarded by sequences_mutex
    mutable std::mutex fanout_mutex;
    MessageId last_fanned_out;  // guarded by fanout_mutex
    std::vector<std::shared_ptr<SubscriberSink>> sinks;  // guarded by fanout_mutex
    bool watched = false;  // the bus delivers this topic; guarded by fanout_mutex
  };

  std::shared_ptr<Hub> HubFor(const TopicKey& topic);
  std::shared_ptr<Hub> FindHub(const TopicKey& topic) const;
  // In id order, skipping what was already fanned out (a bus may deliver what a watch started
  // after), except for `late` delayed messages, which come after higher ids by design.
  static void FanOut(Hub& hub, const std::vector<MessagePtr>& messages, bool late = false);
  // Fans out what is due now and schedules each delayed message for its time.
  void FanOutNowOrLater(const std::shared_ptr<Hub>& hub, const std::vector<MessagePtr>& messages);
  // From the topic's newest messages, when its hub is made (so after a restart): rebuilds the
  // de-duplication marks, so a producer that re-sends at once is still caught, and schedules the
  // late fan-out of delayed messages not due yet.
  void SeedFromNewest(const TopicKey& topic, const std::shared_ptr<Hub>& hub);
  // Starts the bus's delivery of `topic` to this node (first live subscriber).
  void Watch(const TopicKey& topic, const std::shared_ptr<Hub>& hub);

  MessageStore& store_;
  const Clock& clock_;
  Scheduler* scheduler_;
  ClusterBus* const bus_;
  mutable std::shared_mutex hubs_mutex_;
  std::unordered_map<TopicKey, std::shared_ptr<Hub>, TopicKeyHash> hubs_;
};

}  // namespace magnetar::core
