#pragma once

// The durable user records (auth::UserStore): "users" maps user id -> record (password hash
// included), "usernames" maps username -> user id; both change in one WriteBatch.
//
// Threading: thread-safe. Reads go straight to RocksDB; writes are serialised by one mutex so that
// the uniqueness checks and the two records stay consistent, and never wait for a sync (see
// RocksDbEngine::WriteRecords). Lifecycle: shares the engine; no state of its own.

#include <memory>
#include <mutex>

#include "auth/user_store.h"
#include "storage/rocksdb/rocksdb_engine.h"

namespace magnetar::storage {

class RocksDbUserStore final : public auth::UserStore {
 public:
  explicit RocksDbUserStore(std::shared_ptr<RocksDbEngine> engine) : engine_(std::move(engine)) {}

  Status Create(const auth::User& user) override;
  Result<auth::User> GetById(const std::string& user_id) override;
  Result<auth::User> GetByUsername(const std::string& username) override;
  // Ordered by (created_at, user_id), like the memory engine.
  Result<std::vector<auth::User>> List() override;
  Status Update(const auth::User& user) override;
  Status Delete(const std::string& user_id) override;

 private:
  std::shared_ptr<RocksDbEngine> engine_;
  std::mutex write_mutex_;
};

}  // namespace magnetar::storage
