#pragma once

// Pure codecs of the Pulsar WebSocket API (spec/pulsar-websocket.md §7, §1, §3.1, §4.1, §5.1):
// message ids as base64 MessageIdData, strict standard base64, the request path, and the query
// parameters of the three endpoints. No I/O, so unit tests and fuzzers link it alone.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base64.h"  // Base64Encode, for payloads
#include "common/message_id.h"

namespace magnetar::pulsar_ws {

// Strict: length a multiple of 4, alphabet only, padding only at the end. nullopt otherwise.
std::optional<std::string> Base64Decode(std::string_view text);

// MessageIdData{ledgerId = hi, entryId = lo} serialised as protobuf, then base64.
std::string EncodeMessageId(MessageId id);
// Accepts any field order, unknown fields (skipped by wire type), batch_index / batch_size /
// partition / ack_set / first_chunk_message_id. Requires ledgerId and entryId. Bounded: at most
// kMaxMessageIdBytes of protobuf, no recursion.
inline constexpr size_t kMaxMessageIdBytes = 512;
std::optional<MessageId> DecodeMessageIdBytes(std::string_view bytes);
std::optional<MessageId> DecodeMessageId(std::string_view base64);

enum class Role { kProducer, kConsumer, kReader };

struct TopicPath {
  Role role = Role::kProducer;
  bool persistent = true;
  std::string tenant;
  std::string ns;
  std::string topic;         // decoded, may contain '/' for producer and reader
  std::string subscription;  // consumer only
  std::string FullName() const;
};

// Parses the path part of a request target (still percent-encoded, query removed or not).
// nullopt with `error` set when the layout is not a v2 producer/consumer/reader path.
std::optional<TopicPath> ParseTopicPath(std::string_view target, std::string* error);

using QueryPairs = std::vector<std::pair<std::string, std::string>>;

enum class SubscriptionType { kExclusive, kShared, kFailover, kKeyShared };
const char* SubscriptionTypeName(SubscriptionType t);

struct ProducerParams {
  std::string producer_name;  // empty: generated
  std::optional<int64_t> initial_sequence_id;
  int32_t send_timeout_millis = 30000;
  int32_t max_pending_messages = 1000;
};

struct ConsumerParams {
  SubscriptionType type = SubscriptionType::kExclusive;
  bool durable = true;
  int32_t receiver_queue_size = 1000;  // capped at 1000; 0 means a window of 1
  int64_t ack_timeout_millis = 0;
  int32_t negative_ack_redelivery_delay_millis = 60000;
  std::string consumer_name;
  int32_t priority_level = 0;
  int32_t max_redeliver_count = 0;  // 0 = no dead-letter topic
  std::string dead_letter_topic;    // empty: "<topic>-<subscription>-DLQ"
  bool pull_mode = false;
};

struct ReaderParams {
  enum class Start { kLatest, kEarliest, kMessageId } start = Start::kLatest;
  MessageId start_id;  // kMessageId: exclusive
  std::string reader_name;
  int32_t receiver_queue_size = 1000;
};

// Each returns nullopt with the text for "Invalid query params: <error>" (HTTP 400).
std::optional<ProducerParams> ParseProducerParams(const QueryPairs& query, std::string* error);
std::optional<ConsumerParams> ParseConsumerParams(const QueryPairs& query, std::string* error);
// A bad messageId is `*bad_message_id` = true (the reader answers 500, spec §5.1).
std::optional<ReaderParams> ParseReaderParams(const QueryPairs& query, std::string* error,
                                              bool* bad_message_id);

// Java's Integer.parseInt / Long.parseLong: optional sign, decimal digits, in range.
std::optional<int32_t> ParseJavaInt(std::string_view s);
std::optional<int64_t> ParseJavaLong(std::string_view s);
// Java's Boolean.parseBoolean: "true" in any case is true, anything else false.
bool ParseJavaBool(std::string_view s);

// Pulsar's publishTime spelling: ISO-8601, UTC, milliseconds, `Z` (2021-10-29T16:01:38.967Z).
std::string FormatPulsarTime(int64_t unix_micros);

}  // namespace magnetar::pulsar_ws
