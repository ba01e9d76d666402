#pragma once

// ProducerSequences: message de-duplication by producer name and sequence id (Pulsar's broker
// de-duplication), for one topic. A message whose producer name is set and whose sequence id is
// not above the highest one already pushed for that name is a duplicate: the broker does not
// store it again and answers with the id the original was stored under, when remembered.
//
// Like Pulsar it keeps two marks per producer: the highest sequence id pushed to the store (so a
// re-send that arrives while the original is still being written is caught) and the highest
// persisted; when an append fails, pushed falls back to persisted, so the client's retry of the
// failed message is stored, not dropped.
//
// Memory is bounded: the last kRememberedIds (sequence id, message id) pairs per producer, and at
// most kMaxProducers producers per topic (the least recently used one is forgotten first).
// Front ends call Forget() when a producer with a generated name goes away: nobody can re-send
// under that name.
//
// Threading: not thread-safe; the broker calls it under the topic's publish lock.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "common/message_id.h"

namespace magnetar::core {

class ProducerSequences {
 public:
  static constexpr size_t kRememberedIds = 256;
  static constexpr size_t kMaxProducers = 4096;

  // At publish time: true when (producer, sequence_id) was already pushed (a duplicate);
  // otherwise records it as pushed and returns false.
  bool CheckAndPush(const std::string& producer, uint64_t sequence_id);
  // The append of (producer, sequence_id) is durable under `id`.
  void Persisted(const std::string& producer, uint64_t sequence_id, MessageId id);
  // The append of a batch from `producer` failed: what was pushed and not persisted may come
  // again.
  void Failed(const std::string& producer);
  void Forget(const std::string& producer);

  // The id (producer, sequence_id) was stored under, if it is still remembered (and persisted).
  std::optional<MessageId> StoredId(const std::string& producer, uint64_t sequence_id) const;
  // The highest sequence id pushed for `producer`; nullopt when it has none.
  std::optional<uint64_t> LastSequence(const std::string& producer) const;

  size_t producer_count() const { return producers_.size(); }

 private:
  struct State {
    std::optional<uint64_t> pushed;
    std::optional<uint64_t> persisted;
    std::deque<std::pair<uint64_t, MessageId>> recent;  // ascending sequence ids
    std::list<std::string>::iterator lru;
  };

  State& Touch(const std::string& producer);

  std::unordered_map<std::string, State> producers_;
  std::list<std::string> lru_;  // most recently used first
};

}  // namespace magnetar::core
