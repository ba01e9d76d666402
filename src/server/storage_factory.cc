#include "server/storage_factory.h"

#include "storage/memory/memory_cursor_store.h"
#include "storage/memory/memory_kv_store.h"
#include "storage/memory/memory_message_store.h"
#include "storage/memory/memory_topic_catalog.h"
#include "storage/memory/memory_user_store.h"
#include "storage/rocksdb/rocksdb_cursor_store.h"
#include "storage/rocksdb/rocksdb_engine.h"
#include "storage/rocksdb/rocksdb_kv_store.h"
#include "storage/rocksdb/rocksdb_message_store.h"
#include "storage/rocksdb/rocksdb_topic_catalog.h"
#include "storage/rocksdb/rocksdb_user_store.h"

namespace magnetar::server {

namespace {

Storage BuildMemory(const Clock& clock) {
  Storage s;
  s.messages = std::make_unique<storage::MemoryMessageStore>(clock);
  s.topics = std::make_unique<storage::MemoryTopicCatalog>();
  s.kv = std::make_unique<storage::MemoryKvStore>(clock);
  s.cursors = std::make_unique<storage::MemoryCursorStore>();
  s.users = std::make_unique<storage::MemoryUserStore>();
  s.close = [] {};
  s.description = "memory";
  return s;
}

Result<Storage> BuildRocksDb(const ServeConfig& config, const Clock& clock) {
  storage::RocksDbOptions options;
  options.path = config.data_dir;
  auto durability = storage::ParseDurability(config.durability);
  if (!durability) {
    return InvalidArgument("unknown durability '" + config.durability +
                           "'; use fsync, batch or none");
  }
  options.durability = *durability;
  options.sync_interval = std::chrono::milliseconds(config.sync_interval_ms);
  auto engine = storage::RocksDbEngine::Open(options, clock);
  if (!engine.ok()) return engine.status();
  auto messages = storage::RocksDbMessageStore::Open(*engine);
  if (!messages.ok()) return messages.status();
  auto topics = storage::RocksDbTopicCatalog::Open(*engine);
  if (!topics.ok()) return topics.status();

  Storage s;
  storage::RocksDbMessageStore* writer = messages->get();
  s.messages = std::move(messages).value();
  s.topics = std::move(topics).value();
  s.kv = std::make_unique<storage::RocksDbKvStore>(*engine);
  s.cursors = std::make_unique<storage::RocksDbCursorStore>(*engine);
  s.users = std::make_unique<storage::RocksDbUserStore>(*engine);
  s.close = [writer] { writer->Stop(); };
  s.description = "rocksdb at " + config.data_dir + " (durability " + config.durability;
  if (*durability == storage::Durability::kBatch) {
    s.description += ", sync every " + std::to_string(config.sync_interval_ms) + " ms";
  }
  s.description += ")";
  return s;
}

}  // namespace

Result<Storage> BuildStorage(const ServeConfig& config, const Clock& clock) {
  if (config.storage != "memory" && config.storage != "rocksdb") {
    return InvalidArgument("storage engine '" + config.storage +
                           "' is not available in this build; use rocksdb or memory");
  }
  Result<Storage> built = config.storage == "memory" ? Result<Storage>(BuildMemory(clock))
                                                     : BuildRocksDb(config, clock);
  if (!built.ok()) return built;
  core::RetentionPolicy retention;
  retention.max_messages = config.max_messages_per_topic;
  built->messages->SetDefaultRetention(retention);
  return built;
}

}  // namespace magnetar::server
