#include "pulsar_ws/subscription.h"

#include <boost/asio/post.hpp>

#include <algorithm>

#include "common/log.h"

namespace magnetar::pulsar_ws {

namespace asio = boost::asio;

namespace {

constexpr size_t kDispatchBatch = 64;
constexpr int64_t kAckTimeoutTickMicros = 200'000;

// Wakes the subscription when the topic gets a message. Called under the broker's fan-out lock:
// only flags and posts.
class TopicSink final : public core::SubscriberSink {
 public:
  explicit TopicSink(std::function<void()> wake) : wake_(std::move(wake)) {}
  void OnMessage(const core::MessagePtr&) override { wake_(); }

 private:
  std::function<void()> wake_;
};

}  // namespace

Subscription::Subscription(StoreEnv env, SubscriptionRegistry& registry, core::TopicKey topic,
                           std::string name, SubscriptionType type, bool durable,
                           core::CursorState start, asio::any_io_executor executor)
    : env_(env),
      registry_(registry),
      topic_(std::move(topic)),
      name_(std::move(name)),
      type_(type),
      durable_(durable),
      executor_(executor),
      sub_(env.broker.store(), topic_, name_, start),
      saved_(start),
      timer_(executor) {}

Subscription::~Subscription() = default;

void Subscription::Schedule(std::function<void()> fn) {
  auto run = [self = shared_from_this(), fn = std::move(fn)] {
    bool closed_now = false;
    {
      std::lock_guard lock(self->mutex_);
      if (self->closed_) return;
      fn();
      closed_now = self->closed_;
    }
    // Outside the mutex: the registry locks its own mutex before a subscription's.
    if (closed_now) self->registry_.Remove(self.get());
  };
  if (env_.broker.store().blocking()) {
    env_.blocking.Post(std::move(run));
  } else {
    asio::post(executor_, std::move(run));
  }
}

void Subscription::ScheduleDispatch() {
  if (dispatch_scheduled_.exchange(true)) return;  // one pending dispatch covers every wake-up
  Schedule([this] {
    dispatch_scheduled_ = false;
    DispatchLocked();
  });
}

void Subscription::Start(uint64_t consumer, std::weak_ptr<ConsumerSink> sink) {
  Schedule([this, consumer, sink = std::move(sink)] {
    auto it = consumers_.find(consumer);
    if (it == consumers_.end()) return;  // already detached
    it->second.sink = sink;
    it->second.started = true;
    if (!topic_sink_) {
      std::weak_ptr<Subscription> weak = weak_from_this();
      topic_sink_ = std::make_shared<TopicSink>([weak] {
        if (auto self = weak.lock()) self->ScheduleDispatch();
      });
      env_.broker.Subscribe(topic_, topic_sink_);
    }
    if (type_ == SubscriptionType::kFailover) {
      sub_.RedeliverUnacked();
      // A newcomer learns its state even when the active consumer did not change.
      if (const Consumer* active = ActiveLocked(); active && active->id != consumer) {
        if (auto s = sink.lock()) s->ActiveChanged(false);
      }
      NotifyActiveLocked();
    }
    DispatchLocked();
  });
}

void Subscription::NotifyActiveLocked() {
  const Consumer* active = ActiveLocked();
  const uint64_t now_active = active ? active->id : 0;
  if (now_active == notified_active_) return;
  notified_active_ = now_active;
  for (const auto& [id, c] : consumers_) {
    if (!c.started) continue;
    if (auto s = c.sink.lock()) s->ActiveChanged(id == now_active);
  }
}

void Subscription::RedeliverOwnedBy(uint64_t consumer) {
  const UnixMicros now = env_.clock.Now();
  for (auto it = owner_.begin(); it != owner_.end();) {
    if (it->second == consumer) {
      sub_.NegativeAck(it->first, now);
      it = owner_.erase(it);
    } else {
      ++it;
    }
  }
}

void Subscription::Detach(uint64_t consumer) {
  auto self = shared_from_this();
  Schedule([this, self, consumer] {
    if (consumers_.erase(consumer) == 0) return;
    RedeliverOwnedBy(consumer);
    if (consumers_.empty()) return Close();
    if (type_ == SubscriptionType::kFailover) NotifyActiveLocked();
    DispatchLocked();
  });
}

void Subscription::Close() {
  PersistLocked();
  if (!durable_) (void)env_.cursors.Delete(topic_, name_);
  closed_ = true;
  if (topic_sink_) env_.broker.Unsubscribe(topic_, topic_sink_.get());
  topic_sink_.reset();
}

void Subscription::Ack(uint64_t consumer, MessageId id) {
  Schedule([this, consumer, id] {
    if (Status s = sub_.Ack(id); !s.ok()) {
      Logger("pulsar_ws")->warn("ack on {}/{} failed: {}", topic_.ToString(), name_, s.message());
    }
    owner_.erase(id);
    if (auto it = consumers_.find(consumer); it != consumers_.end() && !it->second.spec.pull_mode) {
      it->second.permits = std::min(it->second.permits + 1, it->second.spec.window);
    }
    PersistLocked();
    DispatchLocked();
  });
}

void Subscription::Nack(uint64_t consumer, MessageId id) {
  Schedule([this, consumer, id] {
    auto it = consumers_.find(consumer);
    const int64_t delay = it == consumers_.end() ? 0 : it->second.spec.nack_delay_micros;
    sub_.NegativeAck(id, env_.clock.Now() + delay);
    owner_.erase(id);
    if (it != consumers_.end() && !it->second.spec.pull_mode) {
      it->second.permits = std::min(it->second.permits + 1, it->second.spec.window);
    }
    DispatchLocked();
  });
}

void Subscription::AddPermits(uint64_t consumer, int64_t n) {
  Schedule([this, consumer, n] {
    auto it = consumers_.find(consumer);
    if (it == consumers_.end() || !it->second.spec.pull_mode) return;
    it->second.permits = std::min<int64_t>(it->second.permits + n, 1'000'000);
    DispatchLocked();
  });
}

void Subscription::Unsubscribe(uint64_t consumer, std::function<void(bool)> done) {
  Schedule([this, consumer, done = std::move(done)] {
    if (consumers_.size() != 1 || consumers_.count(consumer) == 0) {
      if (done) done(false);
      return;
    }
    std::weak_ptr<ConsumerSink> sink = consumers_.begin()->second.sink;
    consumers_.clear();
    closed_ = true;
    (void)env_.cursors.Delete(topic_, name_);
    if (topic_sink_) env_.broker.Unsubscribe(topic_, topic_sink_.get());
    topic_sink_.reset();
    if (done) done(true);
    if (auto s = sink.lock()) s->SubscriptionGone();
  });
}

void Subscription::AckCumulative(uint64_t /*consumer*/, MessageId id) {
  Schedule([this, id] {
    if (Status s = sub_.AckCumulative(id); !s.ok()) {
      Logger("pulsar_ws")->warn("cumulative ack on {}/{} failed: {}", topic_.ToString(), name_,
                                s.message());
    }
    for (auto it = owner_.begin(); it != owner_.end();) {
      it = it->first <= id ? owner_.erase(it) : std::next(it);
    }
    PersistLocked();
    DispatchLocked();
  });
}

void Subscription::RedeliverUnacked(uint64_t consumer) {
  Schedule([this, consumer] {
    RedeliverOwnedBy(consumer);
    DispatchLocked();
  });
}

void Subscription::Seek(MessageId after) {
  Schedule([this, after] {
    sub_.Seek(after);
    owner_.clear();
    PersistLocked();
    DispatchLocked();
  });
}

void Subscription::PersistLocked() {
  if (!durable_) return;
  core::CursorState now = sub_.Snapshot();
  if (now == saved_) return;
  if (Status s = env_.cursors.Save(topic_, name_, now); !s.ok()) {
    Logger("pulsar_ws")->warn("saving cursor {}/{} failed: {}", topic_.ToString(), name_,
                              s.message());
    return;
  }
  saved_ = std::move(now);
}

const Subscription::Consumer* Subscription::ActiveLocked() const {
  const Consumer* best = nullptr;
  for (const auto& [id, c] : consumers_) {
    if (!c.started) continue;
    if (!best || std::tie(c.spec.priority, c.spec.name, c.id) <
                     std::tie(best->spec.priority, best->spec.name, best->id)) {
      best = &c;
    }
  }
  return best;
}

Subscription::Consumer* Subscription::PickLocked(const core::DeliveredMessage& m) {
  switch (type_) {
    case SubscriptionType::kExclusive:
    case SubscriptionType::kFailover:
      return const_cast<Consumer*>(ActiveLocked());
    case SubscriptionType::kKeyShared: {
      std::vector<Consumer*> started;
      for (auto& [id, c] : consumers_) {
        if (c.started) started.push_back(&c);
      }
      if (started.empty()) return nullptr;
      // Stable while the consumer set is: each key always lands on the same consumer.
      return started[std::hash<std::string>()(m.message->key) % started.size()];
    }
    case SubscriptionType::kShared: {
      // Round-robin over consumers with permits; lower priorityLevel first.
      int32_t best_priority = INT32_MAX;
      for (auto& [id, c] : consumers_) {
        if (c.started && c.permits > 0) best_priority = std::min(best_priority, c.spec.priority);
      }
      std::vector<Consumer*> eligible;
      for (auto& [id, c] : consumers_) {
        if (c.started && c.permits > 0 && c.spec.priority == best_priority) eligible.push_back(&c);
      }
      if (eligible.empty()) return nullptr;
      return eligible[round_robin_++ % eligible.size()];
    }
  }
  return nullptr;
}

void Subscription::DeadLetterLocked(const core::DeliveredMessage& m, const ConsumerSpec& spec) {
  auto draft = std::make_shared<core::Message>();
  const core::Message& src = *m.message;
  draft->topic = spec.dead_letter_topic.name;
  draft->payload = src.payload;
  draft->format = src.format;
  draft->properties = src.properties;
  draft->properties.emplace_back("REAL_TOPIC", "persistent://" + topic_.name);
  draft->properties.emplace_back("ORIGIN_MESSAGE_ID", src.id.ToString());
  draft->key = src.key;
  env_.broker.Publish(spec.dead_letter_topic, {draft}, [](Result<std::vector<core::MessagePtr>> r) {
    if (!r.ok()) Logger("pulsar_ws")->warn("dead-letter publish failed: {}", r.status().message());
  });
  (void)sub_.Ack(src.id);
}

void Subscription::DispatchLocked() {
  const UnixMicros now = env_.clock.Now();
  int64_t min_ack_timeout = 0;
  for (const auto& [id, c] : consumers_) {
    if (c.spec.ack_timeout_micros > 0 &&
        (min_ack_timeout == 0 || c.spec.ack_timeout_micros < min_ack_timeout)) {
      min_ack_timeout = c.spec.ack_timeout_micros;
    }
  }
  if (min_ack_timeout > 0) {
    // Messages owned by a consumer with ack timeouts only; others wait for their ack.
    sub_.ExpireAckTimeouts(now, min_ack_timeout);
  }
  std::map<uint64_t, std::vector<core::DeliveredMessage>> out;
  for (int rounds = 0; rounds < 64; ++rounds) {
    int64_t budget = 0;
    if (type_ == SubscriptionType::kExclusive || type_ == SubscriptionType::kFailover) {
      if (const Consumer* a = ActiveLocked()) budget = a->permits;
    } else {
      for (const auto& [id, c] : consumers_) {
        if (c.started) budget += std::max<int64_t>(c.permits, 0);
      }
    }
    if (budget <= 0) break;
    const MessageId read_before = sub_.read_position();
    auto batch = sub_.Next(std::min<size_t>(budget, kDispatchBatch), now);
    if (!batch.ok()) {
      Logger("pulsar_ws")->warn("reading {} for {} failed: {}", topic_.ToString(), name_,
                                batch.status().message());
      break;
    }
    // Empty but moved: only delayed messages were read (they wait in the subscription); go on.
    if (batch->empty() && sub_.read_position() == read_before) break;
    for (auto& dm : *batch) {
      Consumer* c = PickLocked(dm);
      if (!c) {  // nobody can take it now: it becomes due again at once
        sub_.NegativeAck(dm.message->id, now);
        continue;
      }
      if (c->spec.max_redeliver_count > 0 &&
          dm.redelivery_count > static_cast<uint32_t>(c->spec.max_redeliver_count)) {
        DeadLetterLocked(dm, c->spec);
        continue;
      }
      --c->permits;
      owner_[dm.message->id] = c->id;
      out[c->id].push_back(std::move(dm));
    }
  }
  for (auto& [id, messages] : out) {
    auto it = consumers_.find(id);
    if (it == consumers_.end()) continue;
    if (auto sink = it->second.sink.lock()) sink->Deliver(std::move(messages));
  }
  PersistLocked();
  ArmTimerLocked();
}

void Subscription::ArmTimerLocked() {
  const UnixMicros now = env_.clock.Now();
  UnixMicros when = INT64_MAX;
  if (auto next = sub_.NextRedeliveryTime()) when = std::max(*next, now);
  bool ack_timeouts = false;
  for (const auto& [id, c] : consumers_) ack_timeouts |= c.spec.ack_timeout_micros > 0;
  if (ack_timeouts && sub_.pending_count() > 0) when = std::min(when, now + kAckTimeoutTickMicros);
  if (when == INT64_MAX || when >= armed_at_) return;
  armed_at_ = when;
  const auto delay = std::chrono::microseconds(when - now);
  asio::post(executor_, [weak = weak_from_this(), delay] {
    auto self = weak.lock();
    if (!self) return;
    self->timer_.expires_after(delay);
    self->timer_.async_wait([weak](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self) return;
      self->Schedule([raw = self.get()] {
        raw->armed_at_ = INT64_MAX;
        raw->DispatchLocked();
      });
    });
  });
}

Result<SubscriptionRegistry::Attached> SubscriptionRegistry::Attach(
    const core::TopicKey& topic, const std::string& name, SubscriptionType type, bool durable,
    ConsumerSpec spec, asio::any_io_executor executor, std::optional<MessageId> initial) {
  std::lock_guard lock(mutex_);
  auto key = std::make_pair(topic, name);
  auto it = subs_.find(key);
  if (it != subs_.end()) {
    std::shared_ptr<Subscription> sub = it->second;
    std::lock_guard sub_lock(sub->mutex_);
    if (!sub->closed_) {
      if (sub->type_ != type) return AlreadyExists("Subscription is of different type");
      if (type == SubscriptionType::kExclusive && !sub->consumers_.empty()) {
        return AlreadyExists("Exclusive consumer is already connected");
      }
      const uint64_t id = next_consumer_++;
      Subscription::Consumer c;
      c.id = id;
      c.permits = spec.pull_mode ? 0 : spec.window;
      c.spec = std::move(spec);
      sub->consumers_.emplace(id, std::move(c));
      return Attached{sub, id};
    }
    subs_.erase(it);
  }
  core::CursorState start;
  auto loaded = durable ? env_.cursors.Load(topic, name) : Result<core::CursorState>(NotFound(""));
  if (loaded.ok()) {
    start = std::move(loaded).value();
  } else if (loaded.status().code() == StatusCode::kNotFound) {
    // A new subscription starts at the latest message (Pulsar's consumer default).
    if (initial) {
      start.mark_delete = *initial;
    } else {
      auto stats = env_.broker.store().Stats(topic);
      if (!stats.ok()) return stats.status();
      start.mark_delete = stats->last_id;
    }
    if (durable) {
      if (Status s = env_.cursors.Save(topic, name, start); !s.ok()) return s;
    }
  } else {
    return loaded.status();
  }
  auto sub = std::make_shared<Subscription>(env_, *this, topic, name, type, durable, start,
                                            executor);
  const uint64_t id = next_consumer_++;
  Subscription::Consumer c;
  c.id = id;
  c.permits = spec.pull_mode ? 0 : spec.window;
  c.spec = std::move(spec);
  sub->consumers_.emplace(id, std::move(c));
  subs_.emplace(key, sub);
  return Attached{sub, id};
}

void SubscriptionRegistry::Remove(const Subscription* sub) {
  std::lock_guard lock(mutex_);
  auto it = subs_.find(std::make_pair(sub->topic(), sub->name()));
  if (it != subs_.end() && it->second.get() == sub) subs_.erase(it);
}

}  // namespace magnetar::pulsar_ws
