#pragma once

// The memory engine's expiring key/value records (idempotency, deny-list, counters).
// Thread-safe; expiry is checked on read and swept periodically.

#include <mutex>
#include <unordered_map>

#include "common/clock.h"
#include "core/kv_store.h"

namespace magnetar::storage {

class MemoryKvStore final : public core::KvStore {
 public:
  explicit MemoryKvStore(const Clock& clock) : clock_(clock) {}

  Result<bool> PutIfAbsent(const std::string& key, const std::string& value,
                           UnixMicros expires_at) override;
  Status Put(const std::string& key, const std::string& value, UnixMicros expires_at) override;
  Result<bool> CompareAndSet(const std::string& key, const std::string& expected,
                             const std::string& value, UnixMicros expires_at) override;
  Result<std::optional<std::string>> Get(const std::string& key) override;
  Status Delete(const std::string& key) override;
  void Sweep(UnixMicros now) override;

 private:
  struct Entry {
    std::string value;
    UnixMicros expires_at;  // 0 = never
  };
  bool Live(const Entry& e, UnixMicros now) const { return e.expires_at == 0 || e.expires_at > now; }

  const Clock& clock_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace magnetar::storage
