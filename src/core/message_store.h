#pragma once

// MessageStore: the topic logs, as the core needs them from a storage engine. Engines (memory,
// rocksdb, redis) implement it; the contract tests under tests/ hold every engine to it.

#include <functional>
#include <vector>

#include "common/status.h"
#include "core/message.h"

namespace magnetar::core {

// Limits that bound one topic's log. Zero means unlimited.
struct RetentionPolicy {
  uint64_t max_messages = 0;
  uint64_t max_bytes = 0;
  int64_t max_age_micros = 0;
};

struct ReadRequest {
  MessageId after = MessageId::Min();   // exclusive lower bound
  MessageId before = MessageId::Max();  // exclusive upper bound
  size_t limit = 100;
  bool descending = false;              // newest first (then `before` is the usual cursor)
};

struct ReadResult {
  std::vector<MessagePtr> messages;
  bool has_more = false;  // more live messages exist in the requested range past `limit`
};

struct TopicStats {
  uint64_t message_count = 0;
  uint64_t byte_count = 0;
  MessageId first_id;  // Min() when empty
  MessageId last_id;   // the highest id ever appended (even if since trimmed); Min() when none
};

using AppendCallback = std::function<void(Result<std::vector<MessagePtr>>)>;

class MessageStore {
 public:
  virtual ~MessageStore() = default;

  // True when calls may block on disk or network: the core then runs them off the I/O threads.
  virtual bool blocking() const = 0;

  // Appends `drafts` to the topic's log, in order, atomically: all or none. Assigns each an id
  // strictly greater than every id the topic had (hi = publish time in ms, lo = sequence within
  // that ms, like a Redis stream) and its publish_time. Calls `done` exactly once, possibly inline
  // and possibly on another thread; for one topic, callbacks come in append order.
  virtual void Append(const TopicKey& topic, std::vector<DraftPtr> drafts, AppendCallback done) = 0;

  // Reads live (not expired, not trimmed) messages in (after, before), oldest first unless
  // descending. Unknown topics read as empty.
  virtual Result<ReadResult> Read(const TopicKey& topic, const ReadRequest& request) = 0;

  virtual Result<TopicStats> Stats(const TopicKey& topic) = 0;

  // Removes the topic's messages (relay correction D8). Ids keep increasing if it is re-created.
  virtual Status DeleteTopic(const TopicKey& topic) = 0;

  // The limits applied to topics without their own. Engines apply them on append and in Sweep().
  virtual void SetDefaultRetention(const RetentionPolicy& policy) = 0;
  virtual void SetRetention(const TopicKey& topic, const RetentionPolicy& policy) = 0;

  // Drops expired messages (TTL, age) and enforces retention; called periodically.
  virtual void Sweep(UnixMicros now) = 0;

  // Storage health for /ready: OK, or why not.
  virtual Status Health() = 0;
};

}  // namespace magnetar::core
