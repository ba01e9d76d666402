#pragma once

// The translation between a Pulsar SEND/MESSAGE payload and core::Message, which is what makes a
// topic one thing across protocols:
//   * SEND: the MessageMetadata's properties, partition key, event time, producer name and
//     sequence id become the message's fields, the payload its payload. A batch is split into its
//     messages (one core message each, appended together, all or none), so relay and WebSocket
//     clients read each message on its own.
//   * MESSAGE: a MessageMetadata rebuilt from the core message (whatever protocol published it),
//     encoded once per message and shared by every binary consumer (EncodingCache).
// Compressed payloads (LZ4, ZLIB, ZSTD, SNAPPY) are decompressed on arrival; encrypted and
// chunked ones are refused with a clear error (other protocols could not read them).

#include <cstdint>
#include <string>
#include <vector>

#include "core/message.h"
#include "pulsar/codec/frame.h"

namespace magnetar::pulsar {

struct SendDrafts {
  std::vector<core::DraftPtr> drafts;  // empty on error
  proto::ServerError error = proto::UnknownError;
  std::string message;
};

// `producer_name`: the registered name, used when the metadata carries none. A compressed
// payload is decompressed first (its announced size at most `max_uncompressed`).
SendDrafts DraftsFromSend(const Frame& frame, const std::string& producer_name,
                          uint32_t max_uncompressed = kDefaultMaxMessageSize);

// [u32 crc32c][u32 metadataSize][MessageMetadata][payload] of a stored message, computed once per
// fan-out (core::EncodingCache).
struct EncodedEntry {
  uint32_t crc = 0;
  std::string_view entry;  // into holder
  core::Encoded holder;
};
EncodedEntry EntryFor(const core::MessagePtr& message);

// The MessageMetadata a binary consumer gets for a stored message.
proto::MessageMetadata MetadataFor(const core::Message& message);

}  // namespace magnetar::pulsar
