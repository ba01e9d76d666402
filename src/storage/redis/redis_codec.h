#pragma once

// The Redis engine's key layout and value encodings.
//
// Keys (every key of one topic carries the same hash tag, so they share a Redis Cluster slot and
// one Lua script may touch them all):
//   mg:{<tag>}:log       stream: the topic's messages; entry id = message id, fields n t x d
//                        (byte size, publish time, expiry (0 = none), the encoded message)
//   mg:{<tag>}:meta      hash: last (the highest id ever assigned), bytes, and the topic's own
//                        retention when it has one (own, rm, rb, ra)
//   mg:{<tag>}:ttl       sorted set: ids of messages with a TTL, scored by expiry (micros)
//   mg:{<tag>}:cursors   hash: durable subscription name -> encoded CursorState
//   mg:{<tag>}:new       pub/sub channel: the last id of every append (the cluster bus)
//   mg:topics            set of tags with a log (what Sweep() walks)
//   mg:catalog:{<owner>} hash: topic name -> encoded TopicRecord;  mg:catalog:owners: set of owners
//   mg:{users}:byid      hash: user id -> encoded User;  mg:{users}:byname: username -> user id
//   mg:kv:<key>          hash: e (expires_at in micros, 0 = never), v (the value); Redis expires
//                        the key itself a little after e (PEXPIRE), reads check e against the clock
// <tag> is "<owner>/<name>" with '%', '/', '{' and '}' percent-encoded.
//
// Values start with a version byte (1); a decoder refuses anything it does not know.

#include <optional>
#include <string>
#include <string_view>

#include "auth/user.h"
#include "core/durable_subscription.h"
#include "core/message.h"
#include "core/topic_catalog.h"

namespace magnetar::storage::redis {

std::string Tag(const core::TopicKey& topic);
std::optional<core::TopicKey> ParseTag(std::string_view tag);
std::string LogKey(const std::string& tag);
std::string MetaKey(const std::string& tag);
std::string TtlKey(const std::string& tag);
std::string CursorsKey(const std::string& tag);
std::string Channel(const std::string& tag);
std::string TagOfChannel(std::string_view channel);  // empty when not one of ours
inline constexpr const char* kTopicsKey = "mg:topics";
std::string CatalogKey(const std::string& owner);
inline constexpr const char* kCatalogOwnersKey = "mg:catalog:owners";
inline constexpr const char* kUsersByIdKey = "mg:{users}:byid";
inline constexpr const char* kUsersByNameKey = "mg:{users}:byname";
std::string KvKey(const std::string& key);

std::string IdString(const MessageId& id);

// The message fields not kept as stream fields: topic, payload, format, key, producer, sequence,
// properties.
std::string EncodeMessageBody(const core::Message& m);
bool DecodeMessageBody(std::string_view in, core::Message& m);

std::string EncodeUser(const auth::User& u);
bool DecodeUser(std::string_view in, auth::User& u);

std::string EncodeCursor(const core::CursorState& c);
bool DecodeCursor(std::string_view in, core::CursorState& c);

std::string EncodeTopicRecord(const core::TopicRecord& r);
bool DecodeTopicRecord(std::string_view in, core::TopicRecord& r);

}  // namespace magnetar::storage::redis
