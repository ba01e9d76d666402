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
#include "storage/redis/redis_cluster_bus.h"
#include "storage/redis/redis_engine.h"
#include "storage/redis/redis_message_store.h"
#include "storage/redis/redis_record_stores.h"
#include "storage/redis/redis_shared_limits.h"
#include "storage/redis/redis_url.h"

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

Result<Storage> BuildRedis(const ServeConfig& config, const Clock& clock) {
  auto endpoint = storage::ParseRedisUrl(config.storage);
  if (!endpoint.ok()) return endpoint.status();
  storage::RedisOptions options;
  options.endpoint = std::move(endpoint).value();
  options.tls_ca_file = config.redis_tls_ca;
  options.tls_cert_file = config.redis_tls_cert;
  options.tls_key_file = config.redis_tls_key;
  auto engine = storage::RedisEngine::Open(options, clock);
  if (!engine.ok()) return engine.status();
  std::shared_ptr<storage::RedisEngine> shared = std::move(engine).value();
  auto bus = storage::RedisClusterBus::Start(shared);
  storage::RedisClusterBus* bus_ptr = bus.get();
  auto limits = storage::RedisSharedLimits::Start(
      shared, std::chrono::milliseconds(int64_t{config.slot_lease_seconds} * 1000));

  Storage s;
  s.messages = std::make_unique<storage::RedisMessageStore>(shared);
  s.topics = std::make_unique<storage::RedisTopicCatalog>(shared);
  s.kv = std::make_unique<storage::RedisKvStore>(shared);
  s.cursors = std::make_unique<storage::RedisCursorStore>(shared);
  s.users = std::make_unique<storage::RedisUserStore>(shared);
  s.bus = std::move(bus);
  s.limits = limits;
  // The bus first (no delivery after it), then the connections (waiting appends fail, their
  // callbacks run) and the engine's threads.
  s.close = [bus_ptr, limits, shared] {
    bus_ptr->Stop();
    limits->Stop();
    shared->Stop();
  };
  s.description = "redis at " + shared->endpoint().Describe();  // no password in it
  s.records_remote = true;
  s.token_records = std::make_unique<storage::RedisTokenRecords>(shared);
  return s;
}

}  // namespace

Result<Storage> BuildStorage(const ServeConfig& config, const Clock& clock) {
  const bool redis = storage::IsRedisUrl(config.storage);
  if (config.storage != "memory" && config.storage != "rocksdb" && !redis) {
    return InvalidArgument("storage engine '" + config.storage +
                           "' is not available in this build; use rocksdb, memory or "
                           "redis://host:port");
  }
  Result<Storage> built = config.storage == "memory" ? Result<Storage>(BuildMemory(clock))
                          : redis                    ? BuildRedis(config, clock)
                                                     : BuildRocksDb(config, clock);
  if (!built.ok()) return built;
  core::RetentionPolicy retention;
  retention.max_messages = config.max_messages_per_topic;
  built->messages->SetDefaultRetention(retention);
  return built;
}

}  // namespace magnetar::server
