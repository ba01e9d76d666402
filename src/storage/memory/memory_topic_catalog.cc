#include "storage/memory/memory_topic_catalog.h"

namespace magnetar::storage {

Status MemoryTopicCatalog::Create(const core::TopicRecord& record) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = records_.try_emplace({record.owner_id, record.name}, record);
  if (!inserted) return AlreadyExists("topic exists");
  return Status::Ok();
}

Result<core::TopicRecord> MemoryTopicCatalog::Get(const core::TopicKey& key) {
  std::lock_guard lock(mutex_);
  auto it = records_.find({key.owner, key.name});
  if (it == records_.end()) return NotFound("topic not found");
  return it->second;
}

Result<std::vector<core::TopicRecord>> MemoryTopicCatalog::ListByOwner(
    const std::string& owner_id) {
  std::lock_guard lock(mutex_);
  std::vector<core::TopicRecord> out;
  for (auto it = records_.lower_bound({owner_id, ""});
       it != records_.end() && it->first.first == owner_id; ++it) {
    out.push_back(it->second);
  }
  return out;
}

Status MemoryTopicCatalog::Update(const core::TopicRecord& record) {
  std::lock_guard lock(mutex_);
  auto it = records_.find({record.owner_id, record.name});
  if (it == records_.end()) return NotFound("topic not found");
  it->second = record;
  return Status::Ok();
}

Status MemoryTopicCatalog::Delete(const core::TopicKey& key) {
  std::lock_guard lock(mutex_);
  if (records_.erase({key.owner, key.name}) == 0) return NotFound("topic not found");
  return Status::Ok();
}

Result<uint64_t> MemoryTopicCatalog::Count() {
  std::lock_guard lock(mutex_);
  return static_cast<uint64_t>(records_.size());
}

}  // namespace magnetar::storage
