#pragma once

// Pieces shared by the files of Connection (connection*.cc): message-id conversions and the
// owner key of non-persistent topics. Private to the module.

#include <cstdint>
#include <string>

#include "common/message_id.h"
#include "pulsar/codec/frame.h"
#include "pulsar_ws/codec.h"

namespace magnetar::pulsar::internal {

// Non-persistent topics are kept under their own owner key, apart from the relay's topics (the
// same key the Pulsar WebSocket API uses, so both protocols share them).
constexpr char kNonPersistentOwnerPrefix[] = "non-persistent:";

// The version bytes clients get for a stored schema: an 8-byte big-endian number, as Java's.
inline std::string SchemaVersionBytes(uint64_t version) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(version >> (56 - 8 * i));
  return out;
}

inline proto::MessageIdData IdData(MessageId id) {
  proto::MessageIdData d;
  d.set_ledgerid(id.hi);
  d.set_entryid(id.lo);
  return d;
}

inline MessageId FromIdData(const proto::MessageIdData& d) { return {d.ledgerid(), d.entryid()}; }

// The id just before `id`, so that a cursor "after" it starts at `id` (seek is inclusive).
inline MessageId Before(MessageId id) {
  if (id.lo > 0) return {id.hi, id.lo - 1};
  if (id.hi > 0) return {id.hi - 1, UINT64_MAX};
  return MessageId::Min();
}

// Java's MessageId.earliest is {-1, -1} and latest {2^63-1, 2^63-1} (spec §5, readers).
inline bool IsEarliest(const proto::MessageIdData& d) { return d.ledgerid() == UINT64_MAX && d.entryid() == UINT64_MAX; }
inline bool IsLatest(const proto::MessageIdData& d) {
  return d.ledgerid() == uint64_t{INT64_MAX} && d.entryid() == uint64_t{INT64_MAX};
}

inline pulsar_ws::SubscriptionType SubType(proto::CommandSubscribe::SubType t) {
  switch (t) {
    case proto::CommandSubscribe::Shared: return pulsar_ws::SubscriptionType::kShared;
    case proto::CommandSubscribe::Failover: return pulsar_ws::SubscriptionType::kFailover;
    case proto::CommandSubscribe::Key_Shared: return pulsar_ws::SubscriptionType::kKeyShared;
    default: return pulsar_ws::SubscriptionType::kExclusive;
  }
}

}  // namespace magnetar::pulsar::internal
