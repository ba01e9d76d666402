#pragma once

// Subscription: one durable (or non-durable) Pulsar subscription shared by every consumer attached
// to it, whatever connection each is on. It owns the core::DurableSubscription (ack state,
// redelivery) and decides which consumer gets which message by subscription type:
//   Exclusive  one consumer; a second attach is refused (409).
//   Failover   the consumer with the lowest (priorityLevel, consumerName, arrival) is active; the
//              others get nothing until it leaves, then its unacked messages go to the next one.
//   Shared     round-robin over the consumers that have permits.
//   Key_Shared a message goes to the consumer its key hashes to (so each key stays in order);
//              messages without a key share one bucket.
// Flow control is per consumer permits (push: the receiverQueueSize window, freed by ack/nack;
// pull: only `permit` frames add). A consumer that leaves gets its unacked messages redelivered to
// the others (redelivery count + 1).
//
// Threading: every public method may be called from any thread. Work runs under the subscription
// mutex on the blocking pool when the store may block, else on the subscription's executor; the
// store is read there (DurableSubscription::Next / Ack). Consumers receive messages through
// ConsumerSink::Deliver, called with the mutex held: implementations only post.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/broker.h"
#include "core/cursor_store.h"
#include "core/durable_subscription.h"
#include "net/blocking_pool.h"
#include "pulsar_ws/codec.h"

namespace magnetar::pulsar_ws {

struct StoreEnv {
  core::Broker& broker;
  core::CursorStore& cursors;
  net::BlockingPool& blocking;
  const Clock& clock;
};

class ConsumerSink {
 public:
  virtual ~ConsumerSink() = default;
  // New deliveries for this consumer, in dispatch order. Called with the subscription mutex held:
  // post to the connection, nothing else.
  virtual void Deliver(std::vector<core::DeliveredMessage> messages) = 0;
  // The subscription was deleted (unsubscribe): the session should close.
  virtual void SubscriptionGone() = 0;
  // Failover only: this consumer became the active one, or stopped being it (the binary
  // protocol's ACTIVE_CONSUMER_CHANGE). Called with the mutex held: post only.
  virtual void ActiveChanged(bool /*active*/) {}
};

struct ConsumerSpec {
  std::string name;
  int32_t priority = 0;
  bool pull_mode = false;
  int64_t window = 1000;  // push mode in-flight bound
  int64_t nack_delay_micros = 60'000'000;
  int64_t ack_timeout_micros = 0;
  int32_t max_redeliver_count = 0;  // 0 = no dead-letter topic
  core::TopicKey dead_letter_topic;
};

class SubscriptionRegistry;

struct MessageIdHash {
  size_t operator()(const MessageId& id) const { return std::hash<uint64_t>()(id.hi * 1000003 ^ id.lo); }
};

class Subscription : public std::enable_shared_from_this<Subscription> {
 public:
  Subscription(StoreEnv env, SubscriptionRegistry& registry, core::TopicKey topic, std::string name,
               SubscriptionType type, bool durable, core::CursorState start,
               boost::asio::any_io_executor executor);
  ~Subscription();

  const core::TopicKey& topic() const { return topic_; }
  const std::string& name() const { return name_; }

  // The consumer starts receiving (its session is open).
  void Start(uint64_t consumer, std::weak_ptr<ConsumerSink> sink);
  void Detach(uint64_t consumer);
  void Ack(uint64_t consumer, MessageId id);
  void Nack(uint64_t consumer, MessageId id);
  void AddPermits(uint64_t consumer, int64_t n);
  // Deletes the subscription when `consumer` is its only consumer (else nothing happens).
  // `done(true)` after a delete, `done(false)` when other consumers are attached; it runs under
  // the subscription mutex: post only.
  void Unsubscribe(uint64_t consumer, std::function<void(bool)> done = {});

  // For the binary protocol (pulsar/), which has these commands and the WebSocket API does not.
  // Acks everything up to and including `id`.
  void AckCumulative(uint64_t consumer, MessageId id);
  // Redelivers every message delivered to `consumer` and not acked (redeliver without ids).
  void RedeliverUnacked(uint64_t consumer);
  // Resets the cursor: every id <= after counts as acked, everything above it is delivered
  // (again). Deliveries in flight are forgotten.
  void Seek(MessageId after);

 private:
  friend class SubscriptionRegistry;
  struct Consumer {
    uint64_t id = 0;
    ConsumerSpec spec;
    std::weak_ptr<ConsumerSink> sink;
    bool started = false;
    int64_t permits = 0;
  };

  // Runs `fn` under the mutex where the store may be read.
  void Schedule(std::function<void()> fn);
  void ScheduleDispatch();
  // Under mutex_ from here on.
  void DispatchLocked();
  void PersistLocked();
  void ArmTimerLocked();
  const Consumer* ActiveLocked() const;  // Exclusive/Failover
  Consumer* PickLocked(const core::DeliveredMessage& m);
  void DeadLetterLocked(const core::DeliveredMessage& m, const ConsumerSpec& spec);
  void RedeliverOwnedBy(uint64_t consumer);
  // Failover: tells every started consumer whether it is the active one, when that changed.
  void NotifyActiveLocked();
  void Close();

  StoreEnv env_;
  SubscriptionRegistry& registry_;
  const core::TopicKey topic_;
  const std::string name_;
  const SubscriptionType type_;
  const bool durable_;
  boost::asio::any_io_executor executor_;

  std::mutex mutex_;
  core::DurableSubscription sub_;
  core::CursorState saved_;
  std::map<uint64_t, Consumer> consumers_;  // by attach order
  std::unordered_map<MessageId, uint64_t, MessageIdHash> owner_;
  size_t round_robin_ = 0;
  uint64_t notified_active_ = 0;  // Failover: the consumer last told it is active (0 = none)
  bool closed_ = false;
  std::shared_ptr<core::SubscriberSink> topic_sink_;
  std::atomic<bool> dispatch_scheduled_{false};
  boost::asio::steady_timer timer_;  // touched only on executor_
  UnixMicros armed_at_ = INT64_MAX;  // guarded by mutex_
};

class SubscriptionRegistry {
 public:
  explicit SubscriptionRegistry(StoreEnv env) : env_(env) {}

  struct Attached {
    std::shared_ptr<Subscription> subscription;
    uint64_t consumer = 0;
  };
  // Finds or creates (loading its cursor; a new one starts at the topic's latest message) the
  // subscription and adds a consumer. AlreadyExists (-> 409) when Exclusive is taken or the
  // subscription has consumers of another type. Reads storage: call where blocking is allowed.
  // `initial` (the binary protocol's initial position or a reader's start id) replaces "latest"
  // as the start of a subscription that does not exist yet: everything after it is delivered.
  Result<Attached> Attach(const core::TopicKey& topic, const std::string& name,
                          SubscriptionType type, bool durable, ConsumerSpec spec,
                          boost::asio::any_io_executor executor,
                          std::optional<MessageId> initial = std::nullopt);

 private:
  friend class Subscription;
  void Remove(const Subscription* sub);

  StoreEnv env_;
  std::mutex mutex_;
  std::map<std::pair<core::TopicKey, std::string>, std::shared_ptr<Subscription>,
           std::function<bool(const std::pair<core::TopicKey, std::string>&,
                              const std::pair<core::TopicKey, std::string>&)>>
      subs_{[](const auto& a, const auto& b) {
        return std::tie(a.first.owner, a.first.name, a.second) <
               std::tie(b.first.owner, b.first.name, b.second);
      }};
  std::atomic<uint64_t> next_consumer_{1};
};

}  // namespace magnetar::pulsar_ws
