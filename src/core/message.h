#pragma once

// A message: immutable once appended, shared by pointer with every subscriber. Each wire encoding
// of it is computed once per fan-out (EncodingCache) whatever the number of subscribers.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/message_id.h"
#include "core/encoding_cache.h"

namespace magnetar::core {

// A topic is identified by its owner (a user id) and its bare name, e.g. ("3f2a…", "jobs").
struct TopicKey {
  std::string owner;
  std::string name;

  bool operator==(const TopicKey&) const = default;
  std::string ToString() const { return owner + "/" + name; }
};

struct TopicKeyHash {
  size_t operator()(const TopicKey& k) const {
    return std::hash<std::string>()(k.owner) * 31 ^ std::hash<std::string>()(k.name);
  }
};

enum class PayloadFormat : uint8_t {
  kJson,    // payload holds the compact JSON text of an object (relay API)
  kBinary,  // arbitrary bytes (Pulsar, eFTL opaque)
};

struct Message {
  MessageId id;                   // assigned by the store on append
  UnixMicros publish_time = 0;    // assigned by the store on append
  UnixMicros expires_at = 0;      // 0 = never (per-message TTL)
  // Delayed delivery (Pulsar deliverAt / deliver_at_time): stored at once, handed to
  // subscriptions and live subscribers not before this time. 0 = at once.
  UnixMicros deliver_at = 0;
  std::string topic;              // bare topic name (the owner is implied by the topic it is in)
  std::string payload;
  PayloadFormat format = PayloadFormat::kJson;
  std::vector<std::pair<std::string, std::string>> properties;  // relay "metadata", in given order
  std::string key;                // partition/ordering key; empty = none
  std::string producer_name;      // for de-duplication by producer + sequence (Pulsar)
  uint64_t sequence_id = 0;
  // Set only on what Broker::Publish answers for a duplicate (its producer name and sequence id
  // were already stored): nothing was stored, and `id` is the original's id when the broker still
  // remembers it, else Min().
  bool duplicate = false;

  EncodingCache encodings;

  size_t ByteSize() const {
    size_t n = payload.size() + key.size() + topic.size();
    for (const auto& [k, v] : properties) n += k.size() + v.size();
    return n;
  }
  bool ExpiredAt(UnixMicros now) const { return expires_at != 0 && expires_at <= now; }
  bool DelayedAt(UnixMicros now) const { return deliver_at > now; }
};

using MessagePtr = std::shared_ptr<const Message>;
// A message being built by a front end, before the store gives it an id.
using DraftPtr = std::shared_ptr<Message>;

}  // namespace magnetar::core
