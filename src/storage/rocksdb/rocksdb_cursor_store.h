#pragma once

// The durable subscription cursors (core::CursorStore), in the "cursors" column family keyed by
// ordered(owner) ordered(topic) ordered(subscription).
//
// Threading: thread-safe (each call is one RocksDB read or write). Writes never wait for a sync
// (see RocksDbEngine::WriteRecords). Lifecycle: shares the engine; no state of its own.

#include <memory>

#include "core/cursor_store.h"
#include "storage/rocksdb/rocksdb_engine.h"

namespace magnetar::storage {

class RocksDbCursorStore final : public core::CursorStore {
 public:
  explicit RocksDbCursorStore(std::shared_ptr<RocksDbEngine> engine) : engine_(std::move(engine)) {}

  Status Save(const core::TopicKey& topic, const std::string& subscription,
              const core::CursorState& state) override;
  Result<core::CursorState> Load(const core::TopicKey& topic,
                                 const std::string& subscription) override;
  Status Delete(const core::TopicKey& topic, const std::string& subscription) override;

 private:
  std::shared_ptr<RocksDbEngine> engine_;
};

}  // namespace magnetar::storage
