#pragma once

// Key and value encodings of the RocksDB engine (the layout is described in README.md).
//
// Keys sort the way the engine reads them: every string inside a key uses an order-preserving,
// prefix-free escape (0x00 -> 0x00 0xFF, then a 0x00 0x01 terminator), and integers inside keys
// are big-endian, so one topic's messages form one contiguous range ordered by id, and one
// owner's topic records form one range ordered by name. Values are small binary records with a
// leading version byte; decoders reject anything truncated or of an unknown version.
//
// Pure functions, no state: safe from any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "auth/user.h"
#include "common/clock.h"
#include "common/message_id.h"
#include "core/durable_subscription.h"
#include "core/message.h"
#include "core/message_store.h"
#include "core/topic_catalog.h"

namespace magnetar::storage::rocks {

// --- key building blocks -------------------------------------------------------------------------

void AppendOrderedString(std::string& out, std::string_view s);
// Reads one ordered string from the front of `in` and advances it; false when malformed.
bool ReadOrderedString(std::string_view& in, std::string* out);

void AppendU64BE(std::string& out, uint64_t v);
uint64_t ReadU64BE(const char* p);

// The smallest string greater than every string that starts with `prefix` ("" when none is).
std::string PrefixSuccessor(std::string_view prefix);

// --- topics and messages -------------------------------------------------------------------------

// ordered(owner) ordered(name): the key of a topic's meta and catalog records, and the prefix of
// all its message keys.
std::string TopicPrefix(const core::TopicKey& topic);
// Parses a whole TopicPrefix() back; false when `key` is not exactly one.
bool ParseTopicPrefix(std::string_view key, core::TopicKey* topic);

inline constexpr size_t kIdBytes = 16;
// TopicPrefix(topic) hi(BE 8) lo(BE 8).
std::string MessageKey(std::string_view topic_prefix, MessageId id);
// The id in the last 16 bytes of a message key (the key must be one).
MessageId MessageKeyId(std::string_view key);

// The "expiry" index: expires_at(BE 8) followed by the message key.
std::string ExpiryKey(UnixMicros expires_at, std::string_view message_key);
bool ParseExpiryKey(std::string_view key, UnixMicros* expires_at, std::string_view* message_key);

// What retention needs from a stored message without decoding all of it.
struct MessageHeader {
  uint64_t byte_size = 0;  // Message::ByteSize()
  UnixMicros publish_time = 0;
  UnixMicros expires_at = 0;
};

std::string EncodeMessage(const core::Message& m);
bool DecodeMessageHeader(std::string_view value, MessageHeader* out);
// Fills every field but `id` and `topic`, which come from the key.
bool DecodeMessage(std::string_view value, core::Message* out);

// A topic log's durable summary, rewritten in every write batch that changes the log.
struct TopicMeta {
  MessageId last_id;   // highest id ever assigned; survives trims and DeleteTopic
  MessageId first_id;  // oldest stored message; Min() when empty
  uint64_t count = 0;
  uint64_t bytes = 0;
  std::optional<core::RetentionPolicy> policy;  // the topic's own limits, if set
};

std::string EncodeTopicMeta(const TopicMeta& meta);
bool DecodeTopicMeta(std::string_view value, TopicMeta* out);

// --- other records -------------------------------------------------------------------------------

std::string EncodeTopicRecord(const core::TopicRecord& record);
// `owner_id` and `name` come from the key.
bool DecodeTopicRecord(std::string_view value, core::TopicRecord* out);

std::string EncodeUser(const auth::User& user);
bool DecodeUser(std::string_view value, auth::User* out);

// kv values: expires_at(BE 8, 0 = never) then the caller's bytes.
std::string EncodeKvValue(std::string_view value, UnixMicros expires_at);
bool DecodeKvValue(std::string_view stored, std::string_view* value, UnixMicros* expires_at);

// ordered(owner) ordered(name) ordered(subscription).
std::string CursorKey(const core::TopicKey& topic, std::string_view subscription);
std::string EncodeCursor(const core::CursorState& state);
bool DecodeCursor(std::string_view value, core::CursorState* out);

}  // namespace magnetar::storage::rocks
