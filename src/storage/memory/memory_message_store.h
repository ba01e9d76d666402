#pragma once

// The memory engine's topic logs: one ordered deque per topic. Everything is lost on restart;
// used for tests and ephemeral relays (`--storage memory`).
//
// Threading: thread-safe. A map lock guards the topic table; each topic has its own lock, so
// publishes to different topics never contend.

#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <unordered_map>

#include "common/clock.h"
#include "core/message_store.h"

namespace magnetar::storage {

class MemoryMessageStore final : public core::MessageStore {
 public:
  explicit MemoryMessageStore(const Clock& clock);

  bool blocking() const override { return false; }
  void Append(const core::TopicKey& topic, std::vector<core::DraftPtr> drafts,
              core::AppendCallback done) override;
  Result<core::ReadResult> Read(const core::TopicKey& topic,
                                const core::ReadRequest& request) override;
  Result<core::TopicStats> Stats(const core::TopicKey& topic) override;
  Status DeleteTopic(const core::TopicKey& topic) override;
  void SetDefaultRetention(const core::RetentionPolicy& policy) override;
  void SetRetention(const core::TopicKey& topic, const core::RetentionPolicy& policy) override;
  void Sweep(UnixMicros now) override;
  Status Health() override { return Status::Ok(); }

 private:
  struct TopicLog {
    std::mutex mutex;
    std::deque<core::MessagePtr> messages;  // ascending ids
    uint64_t bytes = 0;
    MessageId last_id;                      // survives trimming and DeleteTopic
    std::optional<core::RetentionPolicy> policy;
    // At most the smallest expires_at of the messages with a TTL (0: none has one), so Sweep scans
    // a log only when something in it may have expired (a scan of every message every sweep was
    // 6% of a batched Pulsar produce). Lowered on append, recomputed by the scan.
    UnixMicros earliest_expiry = 0;
  };

  std::shared_ptr<TopicLog> Find(const core::TopicKey& topic) const;
  std::shared_ptr<TopicLog> FindOrCreate(const core::TopicKey& topic);
  core::RetentionPolicy PolicyOf(const TopicLog& log) const;
  void Enforce(TopicLog& log, UnixMicros now) const;  // log.mutex held

  const Clock& clock_;
  mutable std::shared_mutex mutex_;
  std::unordered_map<core::TopicKey, std::shared_ptr<TopicLog>, core::TopicKeyHash> topics_;
  core::RetentionPolicy default_policy_;  // guarded by mutex_
};

}  // namespace magnetar::storage
