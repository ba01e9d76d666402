#include "storage/rocksdb/rocksdb_kv_store.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>

#include <vector>

#include "common/log.h"
#include "storage/rocksdb/codec.h"

namespace magnetar::storage {

namespace {

constexpr size_t kSweepChunk = 1000;

bool Live(UnixMicros expires_at, UnixMicros now) { return expires_at == 0 || expires_at > now; }

}  // namespace

Status RocksDbKvStore::PutLocked(const std::string& key, const std::string& value,
                                 UnixMicros expires_at) {
  const std::string stored = rocks::EncodeKvValue(value, expires_at);
  return engine_->WriteRecords([&](rocksdb::WriteBatch& batch) {
    batch.Put(engine_->family(RocksDbEngine::kKv), key, stored);
  });
}

Result<bool> RocksDbKvStore::PutIfAbsent(const std::string& key, const std::string& value,
                                         UnixMicros expires_at) {
  std::lock_guard lock(write_mutex_);
  std::string stored;
  Status s = engine_->Get(RocksDbEngine::kKv, key, &stored);
  if (s.ok()) {
    std::string_view old_value;
    UnixMicros old_expiry = 0;
    if (rocks::DecodeKvValue(stored, &old_value, &old_expiry) && Live(old_expiry, clock_.Now())) {
      return false;
    }
  } else if (s.code() != StatusCode::kNotFound) {
    return s;
  }
  if (Status w = PutLocked(key, value, expires_at); !w.ok()) return w;
  return true;
}

Result<bool> RocksDbKvStore::CompareAndSet(const std::string& key, const std::string& expected,
                                           const std::string& value, UnixMicros expires_at) {
  // Every write to the family holds write_mutex_, so nothing changes the record between this
  // read and the write below.
  std::lock_guard lock(write_mutex_);
  std::string stored;
  Status s = engine_->Get(RocksDbEngine::kKv, key, &stored);
  if (s.code() == StatusCode::kNotFound) return false;
  if (!s.ok()) return s;
  std::string_view old_value;
  UnixMicros old_expiry = 0;
  if (!rocks::DecodeKvValue(stored, &old_value, &old_expiry)) return Internal("corrupt kv record");
  if (!Live(old_expiry, clock_.Now()) || old_value != expected) return false;
  if (Status w = PutLocked(key, value, expires_at); !w.ok()) return w;
  return true;
}

Status RocksDbKvStore::Put(const std::string& key, const std::string& value,
                           UnixMicros expires_at) {
  std::lock_guard lock(write_mutex_);
  return PutLocked(key, value, expires_at);
}

Result<std::optional<std::string>> RocksDbKvStore::Get(const std::string& key) {
  std::string stored;
  Status s = engine_->Get(RocksDbEngine::kKv, key, &stored);
  if (s.code() == StatusCode::kNotFound) return std::optional<std::string>();
  if (!s.ok()) return s;
  std::string_view value;
  UnixMicros expires_at = 0;
  if (!rocks::DecodeKvValue(stored, &value, &expires_at)) return Internal("corrupt kv record");
  if (!Live(expires_at, clock_.Now())) return std::optional<std::string>();
  return std::optional<std::string>(std::string(value));
}

Status RocksDbKvStore::Delete(const std::string& key) {
  std::lock_guard lock(write_mutex_);
  return engine_->WriteRecords(
      [&](rocksdb::WriteBatch& batch) { batch.Delete(engine_->family(RocksDbEngine::kKv), key); });
}

void RocksDbKvStore::Sweep(UnixMicros now) {
  {
    std::lock_guard lock(sweep_mutex_);
    if (last_sweep_ != 0 && now - last_sweep_ < kSweepEveryMicros && now >= last_sweep_) return;
    last_sweep_ = now;
  }
  // Find candidates without the write lock, then re-check each under it: a record written again
  // meanwhile (a new expiry) must survive.
  std::vector<std::string> expired;
  {
    auto lock = engine_->LockDb();
    if (!engine_->CheckOpen().ok()) return;
    std::unique_ptr<rocksdb::Iterator> it(
        engine_->db()->NewIterator(rocksdb::ReadOptions(), engine_->family(RocksDbEngine::kKv)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view value;
      UnixMicros expires_at = 0;
      if (rocks::DecodeKvValue(std::string_view(it->value().data(), it->value().size()), &value,
                               &expires_at) &&
          !Live(expires_at, now)) {
        expired.push_back(it->key().ToString());
      }
    }
    if (!it->status().ok()) {
      Logger("storage")->warn("kv sweep: {}", it->status().ToString());
      return;
    }
  }
  for (size_t i = 0; i < expired.size(); i += kSweepChunk) {
    std::lock_guard lock(write_mutex_);
    std::vector<const std::string*> still_expired;
    for (size_t j = i; j < std::min(expired.size(), i + kSweepChunk); ++j) {
      std::string stored;
      if (!engine_->Get(RocksDbEngine::kKv, expired[j], &stored).ok()) continue;
      std::string_view value;
      UnixMicros expires_at = 0;
      if (rocks::DecodeKvValue(stored, &value, &expires_at) && !Live(expires_at, now)) {
        still_expired.push_back(&expired[j]);
      }
    }
    if (still_expired.empty()) continue;
    Status s = engine_->WriteRecords([&](rocksdb::WriteBatch& batch) {
      for (const std::string* key : still_expired) {
        batch.Delete(engine_->family(RocksDbEngine::kKv), *key);
      }
    });
    if (!s.ok()) {
      Logger("storage")->warn("kv sweep: {}", s.message());
      return;
    }
  }
}

}  // namespace magnetar::storage
