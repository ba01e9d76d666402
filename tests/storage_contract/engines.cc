#include "tests/storage_contract/engines.h"

#include <stdlib.h>

#include <filesystem>
#include <future>

#include "storage/memory/memory_cursor_store.h"
#include "storage/memory/memory_kv_store.h"
#include "storage/memory/memory_message_store.h"
#include "storage/memory/memory_topic_catalog.h"
#include "storage/memory/memory_user_store.h"
#include "storage/rocksdb/rocksdb_cursor_store.h"
#include "storage/rocksdb/rocksdb_kv_store.h"
#include "storage/rocksdb/rocksdb_topic_catalog.h"
#include "storage/rocksdb/rocksdb_user_store.h"
#include "storage/redis/redis_message_store.h"
#include "storage/redis/redis_record_stores.h"
#include "storage/redis/redis_url.h"
#include "tests/storage_contract/redis_test_server.h"

namespace magnetar::contract {

Result<std::unique_ptr<TestEngine>> OpenRocksDb(const Clock& clock,
                                                const storage::RocksDbOptions& options) {
  auto engine = storage::RocksDbEngine::Open(options, clock);
  if (!engine.ok()) return engine.status();
  auto messages = storage::RocksDbMessageStore::Open(*engine);
  if (!messages.ok()) return messages.status();
  auto topics = storage::RocksDbTopicCatalog::Open(*engine);
  if (!topics.ok()) return topics.status();
  auto e = std::make_unique<TestEngine>();
  e->rocks = messages->get();
  e->messages = std::move(messages).value();
  e->topics = std::move(topics).value();
  e->kv = std::make_unique<storage::RocksDbKvStore>(*engine);
  e->cursors = std::make_unique<storage::RocksDbCursorStore>(*engine);
  e->users = std::make_unique<storage::RocksDbUserStore>(*engine);
  return e;
}

Result<std::unique_ptr<TestEngine>> OpenRedis(const Clock& clock, bool flush) {
  auto url = TestRedisUrl();
  if (!url.ok()) return url.status();
  auto endpoint = storage::ParseRedisUrl(*url);
  if (!endpoint.ok()) return endpoint.status();
  storage::RedisOptions options;
  options.endpoint = *endpoint;
  auto engine = storage::RedisEngine::Open(options, clock);
  if (!engine.ok()) return engine.status();
  std::shared_ptr<storage::RedisEngine> shared = std::move(engine).value();
  if (flush) {
    auto flushed = shared->Call({"FLUSHDB"});
    if (!flushed.ok()) return flushed.status();
  }
  auto e = std::make_unique<TestEngine>();
  e->messages = std::make_unique<storage::RedisMessageStore>(shared);
  e->topics = std::make_unique<storage::RedisTopicCatalog>(shared);
  e->kv = std::make_unique<storage::RedisKvStore>(shared);
  e->cursors = std::make_unique<storage::RedisCursorStore>(shared);
  e->users = std::make_unique<storage::RedisUserStore>(shared);
  e->redis = shared;
  return e;
}

std::vector<EngineKind> AllEngines() {
  EngineKind memory{"memory", false, [](const Clock& clock, const std::string&) {
                      auto e = std::make_unique<TestEngine>();
                      e->messages = std::make_unique<storage::MemoryMessageStore>(clock);
                      e->topics = std::make_unique<storage::MemoryTopicCatalog>();
                      e->kv = std::make_unique<storage::MemoryKvStore>(clock);
                      e->cursors = std::make_unique<storage::MemoryCursorStore>();
                      e->users = std::make_unique<storage::MemoryUserStore>();
                      return Result<std::unique_ptr<TestEngine>>(std::move(e));
                    }};
  EngineKind rocksdb{"rocksdb", true, [](const Clock& clock, const std::string& dir) {
                       storage::RocksDbOptions options;
                       options.path = dir + "/db";
                       return OpenRocksDb(clock, options);
                     }};
  EngineKind redis{"redis", true, [](const Clock& clock, const std::string&) {
                     return OpenRedis(clock, /*flush=*/true);
                   }};
  return {memory, rocksdb, redis};
}

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/magnetar-contract-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) abort();
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

core::DraftPtr Draft(const std::string& payload, UnixMicros expires_at) {
  auto d = std::make_shared<core::Message>();
  d->payload = payload;
  d->expires_at = expires_at;
  return d;
}

std::vector<core::DraftPtr> Drafts(size_t n, const std::string& prefix) {
  std::vector<core::DraftPtr> out;
  for (size_t i = 0; i < n; ++i) out.push_back(Draft(prefix + std::to_string(i)));
  return out;
}

Result<std::vector<core::MessagePtr>> AppendSync(core::MessageStore& store,
                                                 const core::TopicKey& topic,
                                                 std::vector<core::DraftPtr> drafts) {
  std::promise<Result<std::vector<core::MessagePtr>>> done;
  auto future = done.get_future();
  store.Append(topic, std::move(drafts),
               [&done](Result<std::vector<core::MessagePtr>> r) { done.set_value(std::move(r)); });
  return future.get();
}

std::vector<MessageId> Ids(const std::vector<core::MessagePtr>& messages) {
  std::vector<MessageId> out;
  for (const auto& m : messages) out.push_back(m->id);
  return out;
}

std::vector<std::string> Payloads(const std::vector<core::MessagePtr>& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages) out.push_back(m->payload);
  return out;
}

}  // namespace magnetar::contract
