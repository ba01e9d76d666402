#include "storage/rocksdb/rocksdb_cursor_store.h"

#include <rocksdb/write_batch.h>

#include "storage/rocksdb/codec.h"

namespace magnetar::storage {

Status RocksDbCursorStore::Save(const core::TopicKey& topic, const std::string& subscription,
                                const core::CursorState& state) {
  const std::string key = rocks::CursorKey(topic, subscription);
  const std::string value = rocks::EncodeCursor(state);
  return engine_->WriteRecords([&](rocksdb::WriteBatch& batch) {
    batch.Put(engine_->family(RocksDbEngine::kCursors), key, value);
  });
}

Result<core::CursorState> RocksDbCursorStore::Load(const core::TopicKey& topic,
                                                   const std::string& subscription) {
  std::string value;
  Status s = engine_->Get(RocksDbEngine::kCursors, rocks::CursorKey(topic, subscription), &value);
  if (s.code() == StatusCode::kNotFound) {
    return NotFound("no cursor for subscription '" + subscription + "'");
  }
  if (!s.ok()) return s;
  core::CursorState state;
  if (!rocks::DecodeCursor(value, &state)) return Internal("corrupt cursor record");
  return state;
}

Status RocksDbCursorStore::Delete(const core::TopicKey& topic, const std::string& subscription) {
  const std::string key = rocks::CursorKey(topic, subscription);
  return engine_->WriteRecords([&](rocksdb::WriteBatch& batch) {
    batch.Delete(engine_->family(RocksDbEngine::kCursors), key);
  });
}

}  // namespace magnetar::storage
