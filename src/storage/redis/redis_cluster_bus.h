#pragma once

// RedisClusterBus: core::ClusterBus on Redis. Every append publishes its last id on the topic's
// channel (mg:{tag}:new, from inside the append script, so in the order Redis ran the appends).
// A node subscribes to the channels of the topics it has live subscribers for, on a dedicated
// pub/sub connection, and treats a notification as a wake-up: it reads the topic's stream after
// the last id it delivered (XRANGE on the command connection, at most one read in flight per
// topic; notifications that arrive meanwhile make it read again) and delivers what it found.
// The stream is the source of truth, so nothing depends on pub/sub's at-most-once delivery: a
// read also runs when a SUBSCRIBE is confirmed (closing the window between the watch's starting
// id and the subscription) and for every watched topic after either connection comes back (so an
// outage is caught up from the stream, in order). No polling: an idle topic costs nothing.
//
// Threading: Watch/Unwatch post to the engine's io thread, which owns all the state; deliveries
// run there too.

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/cluster_bus.h"
#include "storage/redis/redis_engine.h"

namespace magnetar::storage {

class RedisClusterBus final : public core::ClusterBus {
 public:
  // Starts the pub/sub connection; stop it with Stop() (or the engine's Stop) before the
  // deliveries' targets go away.
  static std::unique_ptr<RedisClusterBus> Start(std::shared_ptr<RedisEngine> engine);
  ~RedisClusterBus() override;

  void Watch(const core::TopicKey& topic, MessageId after, Delivery deliver) override;
  void Unwatch(const core::TopicKey& topic) override;
  void Stop();

 private:
  struct Topic {
    uint64_t generation = 0;  // which Watch this state belongs to
    MessageId cursor;         // the last id delivered
    Delivery deliver;
    bool reading = false;
    bool again = false;  // woken while reading: read once more
  };

  explicit RedisClusterBus(std::shared_ptr<RedisEngine> engine);
  void OnPush(const RedisReply& push);
  void ReadTopic(const std::string& tag);
  void ReadAll();

  std::shared_ptr<RedisEngine> engine_;
  std::shared_ptr<RedisConnection> pubsub_;
  // io thread only:
  std::unordered_map<std::string, Topic> topics_;  // by tag
  uint64_t next_generation_ = 0;
  bool stopped_ = false;
  std::atomic<bool> stop_requested_{false};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // false once stopped
};

}  // namespace magnetar::storage
