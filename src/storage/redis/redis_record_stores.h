#pragma once

// The Redis engine's record stores: topic catalog, expiring key/value records, users and durable
// subscription cursors (key layout in redis_codec.h). Every method is one or two Redis round
// trips from the calling thread; the checks that must be atomic (create-if-absent, the KV
// compare-and-set, a user's two index entries) run as Lua scripts, so they hold across nodes.
//
// Threading: thread-safe (they hold no state of their own besides the engine).

#include <memory>

#include "auth/token_records.h"
#include "auth/user_store.h"
#include "core/cursor_store.h"
#include "core/kv_store.h"
#include "core/topic_catalog.h"
#include "storage/redis/redis_engine.h"

namespace magnetar::storage {

class RedisTopicCatalog final : public core::TopicCatalog {
 public:
  explicit RedisTopicCatalog(std::shared_ptr<RedisEngine> engine) : engine_(std::move(engine)) {}
  Status Create(const core::TopicRecord& record) override;
  Result<core::TopicRecord> Get(const core::TopicKey& key) override;
  Result<std::vector<core::TopicRecord>> ListByOwner(const std::string& owner_id) override;
  Status Update(const core::TopicRecord& record) override;
  Status Delete(const core::TopicKey& key) override;
  Result<uint64_t> Count() override;

 private:
  std::shared_ptr<RedisEngine> engine_;
};

// Expiry: each record keeps its expires_at and reads compare it with the node's clock (so a read
// never returns an expired record); Redis also expires the key itself a second after that
// (PEXPIRE), which is why Sweep() has nothing to do.
class RedisKvStore final : public core::KvStore {
 public:
  explicit RedisKvStore(std::shared_ptr<RedisEngine> engine) : engine_(std::move(engine)) {}
  Result<bool> PutIfAbsent(const std::string& key, const std::string& value,
                           UnixMicros expires_at) override;
  Status Put(const std::string& key, const std::string& value, UnixMicros expires_at) override;
  Result<bool> CompareAndSet(const std::string& key, const std::string& expected,
                             const std::string& value, UnixMicros expires_at) override;
  Result<std::optional<std::string>> Get(const std::string& key) override;
  Status Delete(const std::string& key) override;
  void Sweep(UnixMicros) override {}

 private:
  Result<bool> Write(const char* mode, const std::string& key, const std::string& value,
                     UnixMicros expires_at, const std::string& expected);
  std::shared_ptr<RedisEngine> engine_;
};

// A token check's deny-list record and user in one pipelined round trip (both reads at once).
class RedisTokenRecords final : public auth::TokenRecords {
 public:
  explicit RedisTokenRecords(std::shared_ptr<RedisEngine> engine) : engine_(std::move(engine)) {}
  Result<Read> ReadBoth(const std::string& deny_key, const std::string& user_id) override;

 private:
  std::shared_ptr<RedisEngine> engine_;
};

class RedisUserStore final : public auth::UserStore {
 public:
  explicit RedisUserStore(std::shared_ptr<RedisEngine> engine) : engine_(std::move(engine)) {}
  Status Create(const auth::User& user) override;
  Result<auth::User> GetById(const std::string& user_id) override;
  Result<auth::User> GetByUsername(const std::string& username) override;
  Result<std::vector<auth::User>> List() override;
  Status Update(const auth::User& user) override;
  Status Delete(const std::string& user_id) override;

 private:
  std::shared_ptr<RedisEngine> engine_;
};

class RedisCursorStore final : public core::CursorStore {
 public:
  explicit RedisCursorStore(std::shared_ptr<RedisEngine> engine) : engine_(std::move(engine)) {}
  Status Save(const core::TopicKey& topic, const std::string& subscription,
              const core::CursorState& state) override;
  Result<core::CursorState> Load(const core::TopicKey& topic,
                                 const std::string& subscription) override;
  Status Delete(const core::TopicKey& topic, const std::string& subscription) override;

 private:
  std::shared_ptr<RedisEngine> engine_;
};

}  // namespace magnetar::storage
