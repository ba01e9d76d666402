#pragma once

// Batched payloads (spec §4): when MessageMetadata.num_messages_in_batch is present, the payload
// is that many repetitions of [u32 BE size][SingleMessageMetadata][payload_size bytes]. Entries
// are kept intact: the SingleMessageMetadata bytes are returned as sent next to their parse, so
// re-encoding a parsed batch gives back the same bytes.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "pulsar/codec/pulsar_api.pb.h"

namespace magnetar::pulsar {

// A batch bigger than this is refused whatever the frame limit (Java's default is 1000).
inline constexpr int32_t kMaxBatchMessages = 100'000;

struct BatchEntry {
  std::string metadata_bytes;  // SingleMessageMetadata as sent
  proto::SingleMessageMetadata metadata;
  std::string payload;
};

// Splits a batch payload into exactly `count` entries. InvalidArgument naming the entry and the
// problem when sizes run past the end, a metadata block does not parse, or bytes are left over.
Result<std::vector<BatchEntry>> ParseBatch(std::string_view payload, int32_t count);

// The inverse: [u32 size][metadata_bytes][payload] per entry, in order.
std::string EncodeBatch(const std::vector<BatchEntry>& entries);

}  // namespace magnetar::pulsar
