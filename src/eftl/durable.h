#pragma once

// Durables (spec/eftl.md §c.2): a named subscription whose position and acks live in the storage
// engine (core::CursorStore, under "eftl:<name>" on its topic), so messages published while no
// subscriber is attached, and messages delivered but not acked, are delivered when one attaches
// again, also after a restart.
//
//   standard  one subscriber: a second subscribe to the same durable takes it over (the previous
//             one gets UNSUBSCRIBED err 21 and its unacked messages are redelivered).
//   shared    several subscribers; each message goes to one of them (round-robin over those with
//             room in their window), retained until that one acks it.
//
// A durable starts at the topic's end when first created. Its matcher is the first subscriber's:
// messages it does not match are acked as they are read. Each subscriber may have at most
// `window` (its connection's max_pending_acks) unacked messages. close (and a dropped connection,
// and stop) detaches a subscriber: its unacked messages are redelivered, with their delivery
// count increased (the durable stays in memory without subscribers, so counts carry over; after a
// restart they start again at 1). unsubscribe deletes the durable and its cursor.
//
// Threading: every public method may be called from any thread. Work runs under the durable's
// mutex on the blocking pool when the store may block (it reads the store and writes the cursor),
// else on the executor of the session that created it; targets only post.

#include <boost/asio/any_io_executor.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/broker.h"
#include "core/cursor_store.h"
#include "core/durable_subscription.h"
#include "eftl/fanout.h"
#include "eftl/matcher.h"
#include "net/blocking_pool.h"

namespace magnetar::eftl {

// A session's side of a durable subscription. Called with the durable's mutex held: post only.
class DurableTarget {
 public:
  virtual ~DurableTarget() = default;
  virtual void PostDurableDelivery(uint64_t handle, BodyPtr body, MessageId id, uint32_t count) = 0;
  // The subscription ended on the server's side (taken over, durable deleted by another).
  virtual void PostRevoked(uint64_t handle, int err, std::string reason) = 0;
};

struct DurableEnv {
  core::Broker& broker;
  core::CursorStore& cursors;
  net::BlockingPool& blocking;
  const Clock& clock;
};

enum class DurableType { kStandard, kShared };

class DurableRegistry;

class Durable : public std::enable_shared_from_this<Durable> {
 public:
  Durable(DurableEnv env, DurableRegistry& registry, core::TopicKey topic, std::string name,
          DurableType type, std::shared_ptr<const Matcher> matcher, core::CursorState start,
          boost::asio::any_io_executor executor);

  const core::TopicKey& topic() const { return topic_; }
  DurableType type() const { return type_; }

  void Attach(uint64_t handle, std::weak_ptr<DurableTarget> target, size_t window);
  // close / stop / connection gone: its unacked messages become due for redelivery.
  void Detach(uint64_t handle);
  void Ack(uint64_t handle, std::vector<MessageId> ids);
  // unsubscribe: the durable and its cursor are deleted; other subscribers are revoked.
  void Delete(uint64_t handle);

 private:
  friend class DurableRegistry;
  struct Consumer {
    std::weak_ptr<DurableTarget> target;
    size_t window = 1000;
    size_t in_flight = 0;
  };

  void Schedule(std::function<void()> fn);
  void ScheduleDispatch();
  void DispatchLocked();
  void PersistLocked();
  void ReleaseLocked(uint64_t handle);
  void CloseLocked();

  DurableEnv env_;
  DurableRegistry& registry_;
  const core::TopicKey topic_;
  const std::string name_;
  const DurableType type_;
  const std::shared_ptr<const Matcher> matcher_;
  boost::asio::any_io_executor executor_;

  std::mutex mutex_;
  core::DurableSubscription sub_;
  core::CursorState saved_;
  std::map<uint64_t, Consumer> consumers_;  // by handle (attach order)
  std::map<MessageId, uint64_t> owner_;     // delivered, unacked -> consumer
  size_t round_robin_ = 0;
  bool closed_ = false;
  std::shared_ptr<core::SubscriberSink> topic_sink_;
  std::atomic<bool> dispatch_scheduled_{false};
};

class DurableRegistry {
 public:
  explicit DurableRegistry(DurableEnv env) : env_(env) {}

  // Finds or creates (loading its cursor; a new one starts at the topic's end) the durable.
  // InvalidArgument when it exists with another type. Reads storage: call where blocking is
  // allowed.
  Result<std::shared_ptr<Durable>> Open(const core::TopicKey& topic, const std::string& name,
                                        DurableType type, std::shared_ptr<const Matcher> matcher,
                                        boost::asio::any_io_executor executor);

 private:
  friend class Durable;
  void Remove(const Durable* d);

  DurableEnv env_;
  std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, std::string>, std::shared_ptr<Durable>> durables_;
};

inline std::string DurableCursorName(const std::string& name) { return "eftl:" + name; }

}  // namespace magnetar::eftl
