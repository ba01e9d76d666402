#pragma once

// RedisSharedLimits: core::SharedLimits on the engine's Redis, so the relay's rate limits and
// per-user connection caps hold across every node (D13). Each call is one EVALSHA sent on the
// engine's pipelined connection; its callback runs on the engine's io thread.
//
// Keys (one key per script, so each is one Redis Cluster slot):
//   mg:{lim:<key>}     string: a fixed window's count; PEXPIRE = the window's end
//   mg:{slots:<key>}   hash: node id -> "<count>:<lease expiry ms>"; PEXPIRE = twice the lease
//                      after the last use
// A node renews its leases every lease/3 for every key it holds slots under, writing its own
// count (so a lost release, or an acquire whose answer is still in flight, is off by one for one
// renewal period at most); a node that dies stops renewing and its slots are dropped by the next
// acquire after the lease ran out. Times are
// the node's clock (as everywhere in the engine), so nodes' clocks must agree within a fraction of
// the lease.
//
// Lifecycle: Start() begins the renewals; Stop() (before the engine's Stop) ends them. Stop the
// engine before dropping the last reference (as storage_factory does), so that the engine is
// never destroyed on its own io thread. Thread-safe.

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/shared_limits.h"
#include "storage/redis/redis_engine.h"

namespace magnetar::storage {

class RedisSharedLimits final : public core::SharedLimits,
                                public std::enable_shared_from_this<RedisSharedLimits> {
 public:
  static std::shared_ptr<RedisSharedLimits> Start(std::shared_ptr<RedisEngine> engine,
                                                  std::chrono::milliseconds lease);
  ~RedisSharedLimits() override;

  void CountInWindow(const std::string& key, int64_t limit, int64_t cost, int64_t window_ms,
                     WindowCallback done) override;
  void AcquireSlot(const std::string& key, int64_t cap, SlotCallback done) override;
  void ReleaseSlot(const std::string& key) override;

  void Stop();
  const std::string& node_id() const { return node_id_; }

 private:
  RedisSharedLimits(std::shared_ptr<RedisEngine> engine, std::chrono::milliseconds lease);
  void ScheduleRenewal();
  void RenewAll();
  std::string NowMs() const;

  std::shared_ptr<RedisEngine> engine_;
  const std::chrono::milliseconds lease_;
  const std::string node_id_;
  boost::asio::steady_timer timer_;  // io thread only
  std::mutex mutex_;
  std::unordered_map<std::string, int64_t> held_;  // redis key -> slots this node holds
  bool stopped_ = false;                           // under mutex_
};

}  // namespace magnetar::storage
