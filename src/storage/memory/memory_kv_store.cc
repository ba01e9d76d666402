#include "storage/memory/memory_kv_store.h"

namespace magnetar::storage {

Result<bool> MemoryKvStore::PutIfAbsent(const std::string& key, const std::string& value,
                                        UnixMicros expires_at) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it != entries_.end() && Live(it->second, clock_.Now())) return false;
  entries_[key] = Entry{value, expires_at};
  return true;
}

Status MemoryKvStore::Put(const std::string& key, const std::string& value,
                          UnixMicros expires_at) {
  std::lock_guard lock(mutex_);
  entries_[key] = Entry{value, expires_at};
  return Status::Ok();
}

Result<bool> MemoryKvStore::CompareAndSet(const std::string& key, const std::string& expected,
                                          const std::string& value, UnixMicros expires_at) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end() || !Live(it->second, clock_.Now()) || it->second.value != expected) {
    return false;
  }
  it->second = Entry{value, expires_at};
  return true;
}

Result<std::optional<std::string>> MemoryKvStore::Get(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end() || !Live(it->second, clock_.Now())) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(it->second.value);
}

Status MemoryKvStore::Delete(const std::string& key) {
  std::lock_guard lock(mutex_);
  entries_.erase(key);
  return Status::Ok();
}

void MemoryKvStore::Sweep(UnixMicros now) {
  std::lock_guard lock(mutex_);
  std::erase_if(entries_, [&](const auto& kv) { return !Live(kv.second, now); });
}

}  // namespace magnetar::storage
