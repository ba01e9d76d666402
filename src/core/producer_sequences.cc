#include "core/producer_sequences.h"

#include <algorithm>

namespace magnetar::core {

ProducerSequences::State& ProducerSequences::Touch(const std::string& producer) {
  auto it = producers_.find(producer);
  if (it != producers_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second;
  }
  if (producers_.size() >= kMaxProducers) {
    producers_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(producer);
  State& state = producers_[producer];
  state.lru = lru_.begin();
  return state;
}

bool ProducerSequences::CheckAndPush(const std::string& producer, uint64_t sequence_id) {
  State& state = Touch(producer);
  if (state.pushed && sequence_id <= *state.pushed) return true;
  state.pushed = sequence_id;
  return false;
}

void ProducerSequences::Persisted(const std::string& producer, uint64_t sequence_id,
                                  MessageId id) {
  State& state = Touch(producer);
  if (!state.persisted || sequence_id > *state.persisted) state.persisted = sequence_id;
  if (!state.pushed || sequence_id > *state.pushed) state.pushed = sequence_id;  // seeded
  if (!state.recent.empty() && state.recent.back().first >= sequence_id) return;
  state.recent.emplace_back(sequence_id, id);
  if (state.recent.size() > kRememberedIds) state.recent.pop_front();
}

void ProducerSequences::Failed(const std::string& producer) {
  auto it = producers_.find(producer);
  if (it != producers_.end()) it->second.pushed = it->second.persisted;
}

void ProducerSequences::Forget(const std::string& producer) {
  auto it = producers_.find(producer);
  if (it == producers_.end()) return;
  lru_.erase(it->second.lru);
  producers_.erase(it);
}

std::optional<MessageId> ProducerSequences::StoredId(const std::string& producer,
                                                     uint64_t sequence_id) const {
  auto it = producers_.find(producer);
  if (it == producers_.end()) return std::nullopt;
  const auto& recent = it->second.recent;
  auto pos = std::lower_bound(recent.begin(), recent.end(), sequence_id,
                              [](const auto& entry, uint64_t seq) { return entry.first < seq; });
  if (pos == recent.end() || pos->first != sequence_id) return std::nullopt;
  return pos->second;
}

std::optional<uint64_t> ProducerSequences::LastSequence(const std::string& producer) const {
  auto it = producers_.find(producer);
  if (it == producers_.end()) return std::nullopt;
  return it->second.pushed;
}

}  // namespace magnetar::core
