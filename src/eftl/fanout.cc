#include "eftl/fanout.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <vector>

namespace magnetar::eftl {

Message FromStored(const core::Message& m) {
  auto decoded = ParseMessage(m.payload, DecodeMode::kLenient);
  if (decoded.ok()) return std::move(decoded).value();
  Message out;
  if (m.format == core::PayloadFormat::kBinary) {
    out.Set("_data", Field::Opaque(m.payload));
    return out;
  }
  // A JSON payload that is not an object (or too deep): keep it whole as text, never drop it.
  out.Set("_payload", Field::String(m.payload));
  return out;
}

class TopicFanout final : public core::SubscriberSink {
 public:
  void OnMessage(const core::MessagePtr& message) override {
    std::lock_guard lock(mutex_);
    if (index_.size() == 0) return;
    const Message decoded = FromStored(*message);
    BodyPtr body;
    index_.ForEachMatch(decoded, [&](uint64_t handle) {
      if (!body) body = std::make_shared<const std::string>(EncodeMessage(decoded));
      Post(handle, body, std::nullopt);
    });
  }

  size_t Dispatch(const Message& message, const BodyPtr& body, const RequestInfo& request) {
    std::lock_guard lock(mutex_);
    size_t n = 0;
    index_.ForEachMatch(message, [&](uint64_t handle) {
      if (Post(handle, body, request)) ++n;
    });
    return n;
  }

  void Add(uint64_t handle, std::shared_ptr<const Matcher> matcher,
           std::weak_ptr<DeliveryTarget> target) {
    std::lock_guard lock(mutex_);
    index_.Add(handle, std::move(matcher));
    targets_[handle] = std::move(target);
  }

  // True when no subscription is left.
  bool Remove(uint64_t handle) {
    std::lock_guard lock(mutex_);
    index_.Remove(handle);
    targets_.erase(handle);
    return targets_.empty();
  }

 private:
  bool Post(uint64_t handle, const BodyPtr& body, const std::optional<RequestInfo>& request) {
    auto it = targets_.find(handle);
    if (it == targets_.end()) return false;
    auto target = it->second.lock();
    if (!target) return false;
    target->PostDelivery(handle, body, request);
    return true;
  }

  std::mutex mutex_;
  MatcherIndex index_;
  std::unordered_map<uint64_t, std::weak_ptr<DeliveryTarget>> targets_;
};

FanoutRegistry::~FanoutRegistry() {
  std::lock_guard lock(mutex_);
  for (auto& [topic, fanout] : topics_) broker_.Unsubscribe(topic, fanout.get());
}

void FanoutRegistry::Add(const core::TopicKey& topic, uint64_t handle,
                         std::shared_ptr<const Matcher> matcher,
                         std::weak_ptr<DeliveryTarget> target) {
  std::lock_guard lock(mutex_);
  auto& fanout = topics_[topic];
  if (!fanout) {
    fanout = std::make_shared<TopicFanout>();
    broker_.Subscribe(topic, fanout);
  }
  fanout->Add(handle, std::move(matcher), std::move(target));
}

void FanoutRegistry::Remove(const core::TopicKey& topic, uint64_t handle) {
  std::lock_guard lock(mutex_);
  auto it = topics_.find(topic);
  if (it == topics_.end()) return;
  if (it->second->Remove(handle)) {
    broker_.Unsubscribe(topic, it->second.get());
    topics_.erase(it);
  }
}

size_t FanoutRegistry::Dispatch(const core::TopicKey& topic, const Message& message, BodyPtr body,
                                const RequestInfo& request) {
  std::shared_ptr<TopicFanout> fanout;
  {
    std::lock_guard lock(mutex_);
    auto it = topics_.find(topic);
    if (it == topics_.end()) return 0;
    fanout = it->second;
  }
  return fanout->Dispatch(message, body, request);
}

}  // namespace magnetar::eftl
