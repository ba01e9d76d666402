#include "core/broker.h"

#include <algorithm>
#include <optional>

namespace magnetar::core {

Broker::Broker(MessageStore& store, const Clock& clock, ClusterBus* bus)
    : store_(store), clock_(clock), bus_(bus) {}

std::shared_ptr<Broker::Hub> Broker::FindHub(const TopicKey& topic) const {
  std::shared_lock lock(hubs_mutex_);
  auto it = hubs_.find(topic);
  return it == hubs_.end() ? nullptr : it->second;
}

std::shared_ptr<Broker::Hub> Broker::HubFor(const TopicKey& topic) {
  if (auto hub = FindHub(topic)) return hub;
  std::unique_lock lock(hubs_mutex_);
  auto& slot = hubs_[topic];
  if (!slot) {
    slot = std::make_shared<Hub>();
    // A hub made now must not replay what the store already has to subscribers added later.
    if (auto stats = store_.Stats(topic); stats.ok()) slot->last_fanned_out = stats->last_id;
  }
  return slot;
}

void Broker::FanOut(Hub& hub, const std::vector<MessagePtr>& messages) {
  std::lock_guard lock(hub.fanout_mutex);
  for (const auto& m : messages) {
    if (m->id <= hub.last_fanned_out) continue;  // a bus may deliver what a watch started after
    for (const auto& sink : hub.sinks) sink->OnMessage(m);
    hub.last_fanned_out = std::max(hub.last_fanned_out, m->id);
  }
}

void Broker::Publish(const TopicKey& topic, std::vector<DraftPtr> drafts, AppendCallback done) {
  auto hub = HubFor(topic);
  // Fan-out happens in the store's callback, under the publish lock for a store that completes
  // inline, which keeps ids and fan-out in one order. `done` must not run under that lock (it may
  // publish again to the same topic): whichever of the callback and this function finishes last
  // calls it.
  struct Completion {
    std::shared_ptr<Hub> hub;
    std::mutex mutex;
    bool append_returned = false;                          // guarded by mutex
    std::optional<Result<std::vector<MessagePtr>>> early;  // guarded by mutex
    AppendCallback done;
    bool local_fanout = true;  // false with a bus: the bus delivers (to every node, this one too)
  };
  auto completion = std::make_shared<Completion>();
  completion->hub = hub;
  completion->done = std::move(done);
  completion->local_fanout = bus_ == nullptr;
  // One shared_ptr captured (the hub rides in the Completion): small enough for std::function to
  // hold without allocating, on every publish.
  auto on_appended = [completion](Result<std::vector<MessagePtr>> result) {
    if (result.ok() && completion->local_fanout) FanOut(*completion->hub, *result);
    {
      std::lock_guard lock(completion->mutex);
      if (!completion->append_returned) {
        completion->early.emplace(std::move(result));
        return;
      }
    }
    completion->done(std::move(result));
  };
  {
    // A blocking store calls back in append order from its writer.
    std::lock_guard lock(hub->publish_mutex);
    store_.Append(topic, std::move(drafts), std::move(on_appended));
  }
  {
    std::lock_guard lock(completion->mutex);
    completion->append_returned = true;
    if (!completion->early) return;
  }
  completion->done(std::move(*completion->early));
}

void Broker::Watch(const TopicKey& topic, const std::shared_ptr<Hub>& hub) {
  {
    std::lock_guard lock(hub->fanout_mutex);
    if (hub->watched) return;
  }
  // Not watched, so nothing was fanned out since the last watch ended: start after the newest
  // message the store has now. (A store round trip, outside the lock.)
  auto stats = store_.Stats(topic);
  std::lock_guard lock(hub->fanout_mutex);
  if (hub->watched) return;
  if (stats.ok()) hub->last_fanned_out = std::max(hub->last_fanned_out, stats->last_id);
  hub->watched = true;
  std::weak_ptr<Hub> weak = hub;
  bus_->Watch(topic, hub->last_fanned_out, [weak](std::vector<MessagePtr> messages) {
    if (auto h = weak.lock()) FanOut(*h, messages);
  });
}

MessageId Broker::Subscribe(const TopicKey& topic, std::shared_ptr<SubscriberSink> sink) {
  auto hub = HubFor(topic);
  if (bus_) Watch(topic, hub);
  std::lock_guard lock(hub->fanout_mutex);
  hub->sinks.push_back(std::move(sink));
  return hub->last_fanned_out;
}

void Broker::Unsubscribe(const TopicKey& topic, const SubscriberSink* sink) {
  auto hub = FindHub(topic);
  if (!hub) return;
  std::lock_guard lock(hub->fanout_mutex);
  std::erase_if(hub->sinks, [&](const auto& s) { return s.get() == sink; });
  if (bus_ && hub->watched && hub->sinks.empty()) {
    hub->watched = false;
    bus_->Unwatch(topic);
  }
}

size_t Broker::SubscriberCount(const TopicKey& topic) const {
  auto hub = FindHub(topic);
  if (!hub) return 0;
  std::lock_guard lock(hub->fanout_mutex);
  return hub->sinks.size();
}

Status Broker::DeleteTopicData(const TopicKey& topic) {
  auto hub = HubFor(topic);
  std::lock_guard lock(hub->publish_mutex);
  return store_.DeleteTopic(topic);
}

}  // namespace magnetar::core
