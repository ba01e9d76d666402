#pragma once

// The topic logs as Redis streams (layout in redis_codec.h). An append is one EVALSHA of the
// append script: it assigns ids after the topic's last id (hi = the node's clock in ms, lo = the
// sequence within it, never going back even when the clock does or another node's clock is
// ahead), adds the entries, applies count and bytes retention and publishes the last id on the
// topic's channel, atomically. With any number of nodes, Redis runs the scripts one at a time,
// so one topic's ids are one increasing sequence.
//
// Durability: an append is acknowledged when Redis answered, i.e. at the durability Redis is
// configured for (appendonly yes + appendfsync always: on disk; see docs/cluster.md).
//
// Threading: thread-safe. Append() never blocks: it queues the command on the pipelined
// connection and its callback runs on the engine's completion thread, in append order (the Broker
// serialises appends per topic, and the connection keeps their order). Read, Stats, DeleteTopic,
// SetRetention and Sweep wait for one round trip (blocking() is true, so the core calls Read off
// the I/O threads).

#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/message_store.h"
#include "storage/redis/redis_engine.h"

namespace magnetar::storage {

class RedisMessageStore final : public core::MessageStore {
 public:
  explicit RedisMessageStore(std::shared_ptr<RedisEngine> engine);

  bool blocking() const override { return true; }
  void Append(const core::TopicKey& topic, std::vector<core::DraftPtr> drafts,
              core::AppendCallback done) override;
  Result<core::ReadResult> Read(const core::TopicKey& topic,
                                const core::ReadRequest& request) override;
  Result<core::TopicStats> Stats(const core::TopicKey& topic) override;
  Status DeleteTopic(const core::TopicKey& topic) override;
  void SetDefaultRetention(const core::RetentionPolicy& policy) override;
  void SetRetention(const core::TopicKey& topic, const core::RetentionPolicy& policy) override;
  void Sweep(UnixMicros now) override;
  Status Health() override { return engine_->Health(); }

 private:
  core::RetentionPolicy DefaultPolicy() const;
  void Register(const std::string& tag);

  std::shared_ptr<RedisEngine> engine_;
  mutable std::mutex mutex_;
  core::RetentionPolicy default_policy_;      // guarded by mutex_
  std::unordered_set<std::string> registered_;  // tags added to mg:topics; guarded by mutex_
};

// Decodes the reply of XRANGE / XREVRANGE on a log: kInternal when an entry is malformed.
Result<std::vector<core::MessagePtr>> DecodeStreamEntries(const RedisReply& reply);

}  // namespace magnetar::storage
