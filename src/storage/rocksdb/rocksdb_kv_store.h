#pragma once

// The durable expiring records (core::KvStore: idempotency keys, refresh tokens and their
// chains, the JWT deny-list), in the "kv" column family: key -> expires_at(BE 8) + value.
//
// Expiry is checked on every read; Sweep() deletes expired records, scanning at most once a
// minute (the records are few and small, and a read never returns an expired one anyway).
//
// Threading: thread-safe. Get reads straight from RocksDB; writes are serialised by one mutex so
// PutIfAbsent and CompareAndSet (read, compare, write) are atomic, and never wait for a sync (see
// RocksDbEngine::WriteRecords).

#include <memory>
#include <mutex>

#include "core/kv_store.h"
#include "storage/rocksdb/rocksdb_engine.h"

namespace magnetar::storage {

class RocksDbKvStore final : public core::KvStore {
 public:
  explicit RocksDbKvStore(std::shared_ptr<RocksDbEngine> engine)
      : engine_(std::move(engine)), clock_(engine_->clock()) {}

  Result<bool> PutIfAbsent(const std::string& key, const std::string& value,
                           UnixMicros expires_at) override;
  Status Put(const std::string& key, const std::string& value, UnixMicros expires_at) override;
  Result<bool> CompareAndSet(const std::string& key, const std::string& expected,
                             const std::string& value, UnixMicros expires_at) override;
  Result<std::optional<std::string>> Get(const std::string& key) override;
  Status Delete(const std::string& key) override;
  void Sweep(UnixMicros now) override;

 private:
  static constexpr int64_t kSweepEveryMicros = 60'000'000;

  Status PutLocked(const std::string& key, const std::string& value, UnixMicros expires_at);

  std::shared_ptr<RocksDbEngine> engine_;
  const Clock& clock_;
  std::mutex write_mutex_;
  std::mutex sweep_mutex_;
  UnixMicros last_sweep_ = 0;  // guarded by sweep_mutex_
};

}  // namespace magnetar::storage
