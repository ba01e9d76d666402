#include "core/broker.h"

#include <algorithm>
#include <optional>

namespace magnetar::core {

namespace {

// How many of a topic's newest messages rebuild its de-duplication marks (and re-arm the late
// fan-out of its delayed messages) when its hub is made.
constexpr size_t kSeedMessages = 256;

}  // namespace

Broker::Broker(MessageStore& store, const Clock& clock, Scheduler* scheduler, ClusterBus* bus)
    : store_(store), clock_(clock), scheduler_(scheduler), bus_(bus) {}

std::shared_ptr<Broker::Hub> Broker::FindHub(const TopicKey& topic) const {
  std::shared_lock lock(hubs_mutex_);
  auto it = hubs_.find(topic);
  return it == hubs_.end() ? nullptr : it->second;
}

std::shared_ptr<Broker::Hub> Broker::HubFor(const TopicKey& topic) {
  if (auto hub = FindHub(topic)) return hub;
  // Made outside the lock: its seed reads the store (a disk read, or a Redis round trip), and
  // every other topic's publishes and subscriptions take the lock. Nothing is appended to the
  // topic through this process until a hub is in (an append goes through its hub), so the seed
  // sees everything before it. Of two threads making the same hub, the first to insert wins; the
  // other's is dropped (a delayed message's timer it armed then fans out to no one).
  auto made = std::make_shared<Hub>();
  made->key = topic;
  // A hub made now must not replay what the store already has to subscribers added later.
  if (auto stats = store_.Stats(topic); stats.ok()) made->last_fanned_out = stats->last_id;
  SeedFromNewest(topic, made);
  std::unique_lock lock(hubs_mutex_);
  return hubs_.try_emplace(topic, std::move(made)).first->second;
}

void Broker::SeedFromNewest(const TopicKey& topic, const std::shared_ptr<Hub>& hub) {
  ReadRequest request;
  request.descending = true;
  request.limit = kSeedMessages;
  auto read = store_.Read(topic, request);
  if (!read.ok()) return;  // de-duplication then starts from scratch, as for a new topic
  const UnixMicros now = clock_.Now();
  std::lock_guard lock(hub->sequences_mutex);
  for (auto it = read->messages.rbegin(); it != read->messages.rend(); ++it) {
    const MessagePtr& m = *it;
    if (!m->producer_name.empty()) hub->sequences.Persisted(m->producer_name, m->sequence_id, m->id);
    // Stored before a restart and not due yet: its live subscribers get it at its time.
    if (scheduler_ != nullptr && m->DelayedAt(now)) {
      scheduler_->RunAt(m->deliver_at, topic, [hub, m] { FanOut(*hub, {m}, /*late=*/true); });
    }
  }
}

void Broker::FanOut(Hub& hub, const std::vector<MessagePtr>& messages, bool late) {
  std::lock_guard lock(hub.fanout_mutex);
  for (const auto& m : messages) {
    if (!late && m->id <= hub.last_fanned_out) continue;
    for (const auto& sink : hub.sinks) sink->OnMessage(m);
    hub.last_fanned_out = std::max(hub.last_fanned_out, m->id);
  }
}

void Broker::FanOutNowOrLater(const std::shared_ptr<Hub>& hub,
                              const std::vector<MessagePtr>& messages) {
  const UnixMicros now = clock_.Now();
  const bool any_delayed = std::any_of(messages.begin(), messages.end(),
                                       [now](const MessagePtr& m) { return m->DelayedAt(now); });
  if (!any_delayed || scheduler_ == nullptr) return FanOut(*hub, messages);
  std::vector<MessagePtr> due;
  for (const auto& m : messages) {
    if (!m->DelayedAt(now)) {
      due.push_back(m);
      continue;
    }
    // One timer per delayed message; its subscriptions hold it until then on their own (and
    // re-read it from storage after a restart), so a timer lost at shutdown loses nothing.
    scheduler_->RunAt(m->deliver_at, hub->key, [hub, m] { FanOut(*hub, {m}, /*late=*/true); });
  }
  FanOut(*hub, due);
}

void Broker::Publish(const TopicKey& topic, std::vector<DraftPtr> drafts, AppendCallback done) {
  auto hub = HubFor(topic);
  // Fan-out happens in the store's callback, under the publish lock for a store that completes
  // inline, which keeps ids and fan-out in one order. `done` must not run under that lock (it may
  // publish again to the same topic): whichever of the callback and this function finishes last
  // calls it.
  struct Completion {
    Broker* broker = nullptr;
    std::shared_ptr<Hub> hub;
    std::mutex mutex;
    bool append_returned = false;                          // guarded by mutex
    std::optional<Result<std::vector<MessagePtr>>> early;  // guarded by mutex
    AppendCallback done;
    bool local_fanout = true;  // false with a bus: the bus delivers (to every node, this one too)
    // De-duplication, written before the append starts and empty in the common case: the answer
    // for each draft not stored, by its place in the request, and the producers this append
    // pushed sequence ids for.
    std::vector<std::pair<size_t, MessagePtr>> duplicates;
    std::vector<std::string> producers;
    size_t request_size = 0;

    // The stored messages and the duplicates' answers, in request order.
    std::vector<MessagePtr> Merge(std::vector<MessagePtr> stored) const {
      if (duplicates.empty()) return stored;
      std::vector<MessagePtr> merged;
      merged.reserve(request_size);
      size_t next_stored = 0;
      auto dup = duplicates.begin();
      for (size_t i = 0; i < request_size; ++i) {
        if (dup != duplicates.end() && dup->first == i) {
          merged.push_back((dup++)->second);
        } else if (next_stored < stored.size()) {
          merged.push_back(std::move(stored[next_stored++]));
        }
      }
      return merged;
    }
  };
  auto completion = std::make_shared<Completion>();
  completion->broker = this;
  completion->hub = hub;
  completion->done = std::move(done);
  completion->request_size = drafts.size();
  completion->local_fanout = bus_ == nullptr;
  // One shared_ptr captured (the hub and the broker ride in the Completion): small enough for
  // std::function to hold without allocating, on every publish.
  auto on_appended = [completion](Result<std::vector<MessagePtr>> result) {
    Hub& h = *completion->hub;
    if (result.ok()) {
      bool named = !completion->producers.empty();
      if (named) {
        std::lock_guard lock(h.sequences_mutex);
        for (const auto& m : *result) {
          if (!m->producer_name.empty()) {
            h.sequences.Persisted(m->producer_name, m->sequence_id, m->id);
          }
        }
      }
      if (completion->local_fanout) {
        completion->broker->FanOutNowOrLater(completion->hub, *result);
      }
      if (!completion->duplicates.empty()) result = completion->Merge(std::move(*result));
    } else if (!completion->producers.empty()) {
      std::lock_guard lock(h.sequences_mutex);
      for (const auto& name : completion->producers) h.sequences.Failed(name);
    }
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
    const bool any_named = std::any_of(drafts.begin(), drafts.end(),
                                       [](const DraftPtr& d) { return !d->producer_name.empty(); });
    if (any_named) {
      std::lock_guard sequences_lock(hub->sequences_mutex);
      std::vector<DraftPtr> fresh;
      fresh.reserve(drafts.size());
      for (size_t i = 0; i < drafts.size(); ++i) {
        DraftPtr& d = drafts[i];
        if (d->producer_name.empty()) {
          fresh.push_back(std::move(d));
        } else if (hub->sequences.CheckAndPush(d->producer_name, d->sequence_id)) {
          auto answer = std::make_shared<Message>();
          answer->duplicate = true;
          answer->topic = d->topic;
          answer->producer_name = d->producer_name;
          answer->sequence_id = d->sequence_id;
          answer->id = hub->sequences.StoredId(d->producer_name, d->sequence_id)
                           .value_or(MessageId::Min());
          completion->duplicates.emplace_back(i, std::move(answer));
        } else {
          if (std::find(completion->producers.begin(), completion->producers.end(),
                        d->producer_name) == completion->producers.end()) {
            completion->producers.push_back(d->producer_name);
          }
          fresh.push_back(std::move(d));
        }
      }
      drafts = std::move(fresh);
    }
    if (!drafts.empty()) {
      store_.Append(topic, std::move(drafts), std::move(on_appended));
    } else {
      // Every draft was a duplicate: nothing to store or fan out.
      completion->early.emplace(completion->Merge({}));
    }
  }
  {
    std::lock_guard lock(completion->mutex);
    completion->append_returned = true;
    if (!completion->early) return;
  }
  completion->done(std::move(*completion->early));
}

std::optional<uint64_t> Broker::LastSequence(const TopicKey& topic, const std::string& producer) {
  auto hub = HubFor(topic);
  std::lock_guard lock(hub->sequences_mutex);
  return hub->sequences.LastSequence(producer);
}

void Broker::ForgetProducer(const TopicKey& topic, const std::string& producer) {
  auto hub = FindHub(topic);
  if (!hub) return;
  std::lock_guard lock(hub->sequences_mutex);
  hub->sequences.Forget(producer);
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
  // The broker outlives the bus's deliveries (see the lifecycle note in broker.h).
  bus_->Watch(topic, hub->last_fanned_out, [this, weak](std::vector<MessagePtr> messages) {
    if (auto h = weak.lock()) FanOutNowOrLater(h, messages);
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
