#pragma once

// The engines the storage contract runs against, and helpers shared by its tests.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "auth/user_store.h"
#include "common/clock.h"
#include "core/cursor_store.h"
#include "core/kv_store.h"
#include "core/message_store.h"
#include "core/topic_catalog.h"
#include "storage/rocksdb/rocksdb_engine.h"
#include "storage/rocksdb/rocksdb_message_store.h"
#include "storage/redis/redis_engine.h"

namespace magnetar::contract {

// Every store of one engine instance. Destroying it closes the engine.
struct TestEngine {
  std::unique_ptr<core::MessageStore> messages;
  std::unique_ptr<core::TopicCatalog> topics;
  std::unique_ptr<core::KvStore> kv;
  std::unique_ptr<core::CursorStore> cursors;
  std::unique_ptr<auth::UserStore> users;
  storage::RocksDbMessageStore* rocks = nullptr;  // the rocksdb message store, else null
  std::shared_ptr<storage::RedisEngine> redis;     // the redis engine, else null
};

struct EngineKind {
  std::string name;
  bool durable = false;
  // Opens an engine whose files (if any) live in `dir`.
  std::function<Result<std::unique_ptr<TestEngine>>(const Clock& clock, const std::string& dir)>
      open;
};

std::vector<EngineKind> AllEngines();

// An engine on the test Redis (redis_test_server.h). `flush` empties the database first.
Result<std::unique_ptr<TestEngine>> OpenRedis(const Clock& clock, bool flush);

Result<std::unique_ptr<TestEngine>> OpenRocksDb(const Clock& clock,
                                                const storage::RocksDbOptions& options);

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Drafts with payloads "<prefix>0", "<prefix>1", ...
std::vector<core::DraftPtr> Drafts(size_t n, const std::string& prefix = "m");
core::DraftPtr Draft(const std::string& payload, UnixMicros expires_at = 0);

// Appends and waits for the callback.
Result<std::vector<core::MessagePtr>> AppendSync(core::MessageStore& store,
                                                 const core::TopicKey& topic,
                                                 std::vector<core::DraftPtr> drafts);

std::vector<MessageId> Ids(const std::vector<core::MessagePtr>& messages);
std::vector<std::string> Payloads(const std::vector<core::MessagePtr>& messages);

}  // namespace magnetar::contract
