#include "eftl/durable.h"

#include <boost/asio/post.hpp>

#include "common/log.h"
#include "eftl/protocol.h"

namespace magnetar::eftl {

namespace {

constexpr size_t kDispatchBatch = 64;

// Wakes the durable when its topic gets a message. Under the broker's fan-out lock: only posts.
class WakeSink final : public core::SubscriberSink {
 public:
  explicit WakeSink(std::function<void()> wake) : wake_(std::move(wake)) {}
  void OnMessage(const core::MessagePtr&) override { wake_(); }

 private:
  std::function<void()> wake_;
};

}  // namespace

Durable::Durable(DurableEnv env, DurableRegistry& registry, core::TopicKey topic, std::string name,
                 DurableType type, std::shared_ptr<const Matcher> matcher, core::CursorState start,
                 boost::asio::any_io_executor executor)
    : env_(env),
      registry_(registry),
      topic_(std::move(topic)),
      name_(std::move(name)),
      type_(type),
      matcher_(std::move(matcher)),
      executor_(std::move(executor)),
      sub_(env.broker.store(), topic_, DurableCursorName(name_), start),
      saved_(start) {}

void Durable::Schedule(std::function<void()> fn) {
  auto run = [self = shared_from_this(), fn = std::move(fn)] {
    bool closed_now = false;
    {
      std::lock_guard lock(self->mutex_);
      if (self->closed_) return;
      fn();
      closed_now = self->closed_;
    }
    // Outside the mutex: the registry locks its own mutex before a durable's.
    if (closed_now) self->registry_.Remove(self.get());
  };
  if (env_.broker.store().blocking()) {
    env_.blocking.Post(std::move(run));
  } else {
    boost::asio::post(executor_, std::move(run));
  }
}

void Durable::ScheduleDispatch() {
  if (dispatch_scheduled_.exchange(true)) return;  // one pending dispatch covers every wake-up
  Schedule([this] {
    dispatch_scheduled_ = false;
    DispatchLocked();
  });
}

void Durable::Attach(uint64_t handle, std::weak_ptr<DurableTarget> target, size_t window) {
  Schedule([this, handle, target = std::move(target), window] {
    if (type_ == DurableType::kStandard) {
      // One subscriber: the newest takes over (a reconnecting client must not wait for its old
      // connection's timeout).
      for (auto it = consumers_.begin(); it != consumers_.end();) {
        if (it->first == handle) {
          ++it;
          continue;
        }
        if (auto old = it->second.target.lock()) {
          old->PostRevoked(it->first, kErrSubscriptionFailed, "durable taken over by another subscriber");
        }
        const uint64_t gone = it->first;
        ++it;
        ReleaseLocked(gone);
        consumers_.erase(gone);
      }
    }
    Consumer& c = consumers_[handle];
    c.target = target;
    c.window = std::max<size_t>(window, 1);
    if (!topic_sink_) {
      std::weak_ptr<Durable> weak = weak_from_this();
      topic_sink_ = std::make_shared<WakeSink>([weak] {
        if (auto self = weak.lock()) self->ScheduleDispatch();
      });
      env_.broker.Subscribe(topic_, topic_sink_);
    }
    DispatchLocked();
  });
}

// Its unacked messages become due for redelivery (to whoever comes next).
void Durable::ReleaseLocked(uint64_t handle) {
  const UnixMicros now = env_.clock.Now();
  for (auto it = owner_.begin(); it != owner_.end();) {
    if (it->second == handle) {
      sub_.NegativeAck(it->first, now);
      it = owner_.erase(it);
    } else {
      ++it;
    }
  }
}

void Durable::Detach(uint64_t handle) {
  Schedule([this, handle] {
    if (consumers_.erase(handle) == 0) return;
    ReleaseLocked(handle);
    PersistLocked();
    if (consumers_.empty()) {
      // Kept (with its delivery counts) for the next subscriber, but no longer woken.
      if (topic_sink_) env_.broker.Unsubscribe(topic_, topic_sink_.get());
      topic_sink_.reset();
      return;
    }
    DispatchLocked();
  });
}

void Durable::Ack(uint64_t handle, std::vector<MessageId> ids) {
  Schedule([this, handle, ids = std::move(ids)] {
    auto c = consumers_.find(handle);
    for (const MessageId& id : ids) {
      auto o = owner_.find(id);
      if (o == owner_.end() || o->second != handle) continue;  // not (or no longer) its message
      owner_.erase(o);
      if (c != consumers_.end() && c->second.in_flight > 0) --c->second.in_flight;
      if (Status s = sub_.Ack(id); !s.ok()) {
        Logger("eftl")->warn("eFTL durable '{}': ack failed: {}", name_, s.message());
      }
    }
    PersistLocked();
    DispatchLocked();
  });
}

void Durable::Delete(uint64_t handle) {
  Schedule([this, handle] {
    for (auto& [h, c] : consumers_) {
      if (h == handle) continue;
      if (auto t = c.target.lock()) t->PostRevoked(h, kErrSubscriptionInvalid, "durable deleted (unsubscribed)");
    }
    consumers_.clear();
    owner_.clear();
    if (Status s = env_.cursors.Delete(topic_, DurableCursorName(name_)); !s.ok()) {
      Logger("eftl")->warn("eFTL durable '{}': cursor delete failed: {}", name_, s.message());
    }
    saved_ = sub_.Snapshot();  // nothing left to persist
    CloseLocked();
  });
}

void Durable::CloseLocked() {
  closed_ = true;
  if (topic_sink_) env_.broker.Unsubscribe(topic_, topic_sink_.get());
  topic_sink_.reset();
}

void Durable::PersistLocked() {
  core::CursorState now = sub_.Snapshot();
  if (now == saved_) return;
  if (Status s = env_.cursors.Save(topic_, DurableCursorName(name_), now); !s.ok()) {
    Logger("eftl")->warn("eFTL durable '{}': cursor save failed: {}", name_, s.message());
    return;
  }
  saved_ = std::move(now);
}

void Durable::DispatchLocked() {
  if (consumers_.empty()) return;
  for (int rounds = 0; rounds < 64; ++rounds) {
    // Room left across the consumers.
    size_t room = 0;
    for (const auto& [h, c] : consumers_) room += c.window > c.in_flight ? c.window - c.in_flight : 0;
    if (room == 0) return;
    const MessageId read_before = sub_.read_position();
    auto batch = sub_.Next(std::min(room, kDispatchBatch), env_.clock.Now());
    if (!batch.ok()) {
      Logger("eftl")->warn("eFTL durable '{}': read failed: {}", name_, batch.status().message());
      return;
    }
    // Empty but moved: only delayed messages were read. They wait in the subscription until the
    // broker's late fan-out of each wakes this durable again.
    if (batch->empty() && sub_.read_position() == read_before) break;
    bool acked_any = false;
    for (core::DeliveredMessage& dm : *batch) {
      const Message decoded = FromStored(*dm.message);
      if (matcher_ && !matcher_->Matches(decoded)) {
        (void)sub_.Ack(dm.message->id);  // not for this durable
        acked_any = true;
        continue;
      }
      // Round-robin over the consumers with room.
      Consumer* chosen = nullptr;
      uint64_t chosen_handle = 0;
      for (size_t i = 0; i < consumers_.size() && !chosen; ++i) {
        auto it = std::next(consumers_.begin(), static_cast<long>((round_robin_ + i) % consumers_.size()));
        if (it->second.in_flight < it->second.window) {
          chosen = &it->second;
          chosen_handle = it->first;
          round_robin_ = (round_robin_ + i + 1) % consumers_.size();
        }
      }
      if (!chosen) {
        sub_.NegativeAck(dm.message->id, 0);  // no room after all: due again at once
        continue;
      }
      auto target = chosen->target.lock();
      if (!target) {
        sub_.NegativeAck(dm.message->id, 0);
        continue;
      }
      ++chosen->in_flight;
      owner_[dm.message->id] = chosen_handle;
      target->PostDurableDelivery(chosen_handle,
                                  std::make_shared<const std::string>(EncodeMessage(decoded)),
                                  dm.message->id, dm.redelivery_count + 1);
    }
    if (acked_any) PersistLocked();
  }
}

Result<std::shared_ptr<Durable>> DurableRegistry::Open(const core::TopicKey& topic,
                                                       const std::string& name, DurableType type,
                                                       std::shared_ptr<const Matcher> matcher,
                                                       boost::asio::any_io_executor executor) {
  std::lock_guard lock(mutex_);
  auto key = std::make_tuple(topic.owner, topic.name, name);
  if (auto it = durables_.find(key); it != durables_.end()) {
    bool closed = false;
    {
      std::lock_guard durable_lock(it->second->mutex_);
      closed = it->second->closed_;
    }
    if (!closed) {
      if (it->second->type() != type) {
        return InvalidArgument("durable '" + name + "' exists with another type");
      }
      return it->second;
    }
    durables_.erase(it);  // closing: its state is saved; a new one loads it
  }
  core::CursorState start;
  auto loaded = env_.cursors.Load(topic, DurableCursorName(name));
  if (loaded.ok()) {
    start = std::move(loaded).value();
  } else if (loaded.status().code() == StatusCode::kNotFound) {
    auto stats = env_.broker.store().Stats(topic);
    if (stats.ok()) start.mark_delete = stats->last_id;
    else if (stats.status().code() != StatusCode::kNotFound) return stats.status();
    if (Status s = env_.cursors.Save(topic, DurableCursorName(name), start); !s.ok()) return s;
  } else {
    return loaded.status();
  }
  auto d = std::make_shared<Durable>(env_, *this, topic, name, type, std::move(matcher), start,
                                     std::move(executor));
  durables_.emplace(key, d);
  return d;
}

void DurableRegistry::Remove(const Durable* d) {
  std::lock_guard lock(mutex_);
  auto it = durables_.find(std::make_tuple(d->topic_.owner, d->topic_.name, d->name_));
  if (it != durables_.end() && it->second.get() == d) durables_.erase(it);
}

}  // namespace magnetar::eftl
