#include "storage/memory/memory_cursor_store.h"

namespace magnetar::storage {

Status MemoryCursorStore::Save(const core::TopicKey& topic, const std::string& subscription,
                               const core::CursorState& state) {
  std::lock_guard lock(mutex_);
  cursors_[Key{topic.owner, topic.name, subscription}] = state;
  return Status::Ok();
}

Result<core::CursorState> MemoryCursorStore::Load(const core::TopicKey& topic,
                                                  const std::string& subscription) {
  std::lock_guard lock(mutex_);
  auto it = cursors_.find(Key{topic.owner, topic.name, subscription});
  if (it == cursors_.end()) return NotFound("no cursor for subscription '" + subscription + "'");
  return it->second;
}

Status MemoryCursorStore::Delete(const core::TopicKey& topic, const std::string& subscription) {
  std::lock_guard lock(mutex_);
  cursors_.erase(Key{topic.owner, topic.name, subscription});
  return Status::Ok();
}

}  // namespace magnetar::storage
