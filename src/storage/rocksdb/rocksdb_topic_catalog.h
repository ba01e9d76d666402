#pragma once

// The durable topic records (core::TopicCatalog), in the engine's "catalog" column family keyed by
// ordered(owner) ordered(name), so one owner's topics are one range in name order.
//
// Threading: thread-safe. Reads go straight to RocksDB; writes (rare) are serialised by one mutex
// so that "create unless it exists" is atomic, and are written without waiting for a sync (see
// RocksDbEngine::WriteRecords). Lifecycle: Open() counts the records (again after the engine
// reopens the database); shares the engine.

#include <atomic>
#include <memory>
#include <mutex>

#include "core/topic_catalog.h"
#include "storage/rocksdb/rocksdb_engine.h"

namespace magnetar::storage {

class RocksDbTopicCatalog final : public core::TopicCatalog {
 public:
  static Result<std::unique_ptr<RocksDbTopicCatalog>> Open(std::shared_ptr<RocksDbEngine> engine);
  ~RocksDbTopicCatalog() override;

  Status Create(const core::TopicRecord& record) override;
  Result<core::TopicRecord> Get(const core::TopicKey& key) override;
  Result<std::vector<core::TopicRecord>> ListByOwner(const std::string& owner_id) override;
  Status Update(const core::TopicRecord& record) override;
  Status Delete(const core::TopicKey& key) override;
  Result<uint64_t> Count() override;

 private:
  explicit RocksDbTopicCatalog(std::shared_ptr<RocksDbEngine> engine)
      : engine_(std::move(engine)) {}
  Status Exists(const std::string& key);  // OK, kNotFound or an error
  Status Recount();                       // count_ from the records (at open and reopen)

  std::shared_ptr<RocksDbEngine> engine_;
  std::mutex write_mutex_;
  std::atomic<uint64_t> count_{0};
};

}  // namespace magnetar::storage
