#include "storage/rocksdb/rocksdb_topic_catalog.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>

#include "storage/rocksdb/codec.h"

namespace magnetar::storage {

namespace {

std::string_view AsView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

}  // namespace

Result<std::unique_ptr<RocksDbTopicCatalog>> RocksDbTopicCatalog::Open(
    std::shared_ptr<RocksDbEngine> engine) {
  std::unique_ptr<RocksDbTopicCatalog> catalog(new RocksDbTopicCatalog(std::move(engine)));
  if (Status s = catalog->Recount(); !s.ok()) return s;
  RocksDbTopicCatalog* self = catalog.get();
  self->engine_->SetReopenHook(self, [self] { (void)self->Recount(); });
  return catalog;
}

RocksDbTopicCatalog::~RocksDbTopicCatalog() { engine_->SetReopenHook(this, nullptr); }

Status RocksDbTopicCatalog::Recount() {
  std::lock_guard write_lock(write_mutex_);
  auto lock = engine_->LockDb();
  if (Status open = engine_->CheckOpen(); !open.ok()) return open;
  std::unique_ptr<rocksdb::Iterator> it(
      engine_->db()->NewIterator(rocksdb::ReadOptions(), engine_->family(RocksDbEngine::kCatalog)));
  uint64_t count = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++count;
  if (!it->status().ok()) return FromRocks(it->status(), "counting topic records");
  count_ = count;
  return Status::Ok();
}

Status RocksDbTopicCatalog::Exists(const std::string& key) {
  std::string value;
  return engine_->Get(RocksDbEngine::kCatalog, key, &value);
}

Status RocksDbTopicCatalog::Create(const core::TopicRecord& record) {
  const std::string key = rocks::TopicPrefix(record.key());
  std::lock_guard lock(write_mutex_);
  Status exists = Exists(key);
  if (exists.ok()) return AlreadyExists("topic exists");
  if (exists.code() != StatusCode::kNotFound) return exists;
  const std::string value = rocks::EncodeTopicRecord(record);
  Status s = engine_->WriteRecords([&](rocksdb::WriteBatch& batch) {
    batch.Put(engine_->family(RocksDbEngine::kCatalog), key, value);
  });
  if (!s.ok()) return s;
  ++count_;
  return Status::Ok();
}

Result<core::TopicRecord> RocksDbTopicCatalog::Get(const core::TopicKey& key) {
  std::string value;
  Status s = engine_->Get(RocksDbEngine::kCatalog, rocks::TopicPrefix(key), &value);
  if (s.code() == StatusCode::kNotFound) return NotFound("topic not found");
  if (!s.ok()) return s;
  core::TopicRecord record;
  if (!rocks::DecodeTopicRecord(value, &record)) return Internal("corrupt topic record");
  record.owner_id = key.owner;
  record.name = key.name;
  return record;
}

Result<std::vector<core::TopicRecord>> RocksDbTopicCatalog::ListByOwner(
    const std::string& owner_id) {
  std::string lower;
  rocks::AppendOrderedString(lower, owner_id);
  const std::string upper = rocks::PrefixSuccessor(lower);
  const rocksdb::Slice lower_slice(lower), upper_slice(upper);
  rocksdb::ReadOptions read;
  read.iterate_lower_bound = &lower_slice;
  read.iterate_upper_bound = &upper_slice;
  auto lock = engine_->LockDb();
  if (Status open = engine_->CheckOpen(); !open.ok()) return open;
  std::unique_ptr<rocksdb::Iterator> it(
      engine_->db()->NewIterator(read, engine_->family(RocksDbEngine::kCatalog)));
  std::vector<core::TopicRecord> out;
  for (it->Seek(lower_slice); it->Valid(); it->Next()) {
    core::TopicKey key;
    core::TopicRecord record;
    if (!rocks::ParseTopicPrefix(AsView(it->key()), &key) ||
        !rocks::DecodeTopicRecord(AsView(it->value()), &record)) {
      return Internal("corrupt topic record");
    }
    record.owner_id = std::move(key.owner);
    record.name = std::move(key.name);
    out.push_back(std::move(record));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "topic listing");
  return out;
}

Status RocksDbTopicCatalog::Update(const core::TopicRecord& record) {
  const std::string key = rocks::TopicPrefix(record.key());
  std::lock_guard lock(write_mutex_);
  Status exists = Exists(key);
  if (exists.code() == StatusCode::kNotFound) return NotFound("topic not found");
  if (!exists.ok()) return exists;
  const std::string value = rocks::EncodeTopicRecord(record);
  return engine_->WriteRecords([&](rocksdb::WriteBatch& batch) {
    batch.Put(engine_->family(RocksDbEngine::kCatalog), key, value);
  });
}

Status RocksDbTopicCatalog::Delete(const core::TopicKey& key) {
  const std::string k = rocks::TopicPrefix(key);
  std::lock_guard lock(write_mutex_);
  Status exists = Exists(k);
  if (exists.code() == StatusCode::kNotFound) return NotFound("topic not found");
  if (!exists.ok()) return exists;
  Status s = engine_->WriteRecords([&](rocksdb::WriteBatch& batch) {
    batch.Delete(engine_->family(RocksDbEngine::kCatalog), k);
  });
  if (!s.ok()) return s;
  --count_;
  return Status::Ok();
}

Result<uint64_t> RocksDbTopicCatalog::Count() { return count_.load(); }

}  // namespace magnetar::storage
