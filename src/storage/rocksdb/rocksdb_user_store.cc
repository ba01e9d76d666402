#include "storage/rocksdb/rocksdb_user_store.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>

#include <algorithm>

#include "storage/rocksdb/codec.h"

namespace magnetar::storage {

namespace {

Status UserIdNotFound(const std::string& user_id) {
  return NotFound("User with ID '" + user_id + "' not found");
}

}  // namespace

Status RocksDbUserStore::Create(const auth::User& user) {
  std::lock_guard lock(write_mutex_);
  std::string value;
  Status by_name = engine_->Get(RocksDbEngine::kUsernames, user.username, &value);
  if (by_name.ok()) return AlreadyExists("Username '" + user.username + "' already exists");
  if (by_name.code() != StatusCode::kNotFound) return by_name;
  Status by_id = engine_->Get(RocksDbEngine::kUsers, user.user_id, &value);
  if (by_id.ok()) return AlreadyExists("User with ID '" + user.user_id + "' already exists");
  if (by_id.code() != StatusCode::kNotFound) return by_id;
  const std::string record = rocks::EncodeUser(user);
  return engine_->WriteRecords([&](rocksdb::WriteBatch& batch) {
    batch.Put(engine_->family(RocksDbEngine::kUsers), user.user_id, record);
    batch.Put(engine_->family(RocksDbEngine::kUsernames), user.username, user.user_id);
  });
}

Result<auth::User> RocksDbUserStore::GetById(const std::string& user_id) {
  std::string value;
  Status s = engine_->Get(RocksDbEngine::kUsers, user_id, &value);
  if (s.code() == StatusCode::kNotFound) return UserIdNotFound(user_id);
  if (!s.ok()) return s;
  auth::User user;
  if (!rocks::DecodeUser(value, &user)) return Internal("corrupt user record " + user_id);
  return user;
}

Result<auth::User> RocksDbUserStore::GetByUsername(const std::string& username) {
  std::string user_id;
  Status s = engine_->Get(RocksDbEngine::kUsernames, username, &user_id);
  if (s.code() == StatusCode::kNotFound) return NotFound("User '" + username + "' not found");
  if (!s.ok()) return s;
  auto user = GetById(user_id);
  if (!user.ok() && user.status().code() == StatusCode::kNotFound) {
    return NotFound("User '" + username + "' not found");  // deleted in between
  }
  return user;
}

Result<std::vector<auth::User>> RocksDbUserStore::List() {
  std::vector<auth::User> users;
  {
    auto lock = engine_->LockDb();
    if (Status open = engine_->CheckOpen(); !open.ok()) return open;
    std::unique_ptr<rocksdb::Iterator> it(
        engine_->db()->NewIterator(rocksdb::ReadOptions(), engine_->family(RocksDbEngine::kUsers)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auth::User user;
      if (!rocks::DecodeUser(std::string_view(it->value().data(), it->value().size()), &user)) {
        return Internal("corrupt user record " + it->key().ToString());
      }
      users.push_back(std::move(user));
    }
    if (!it->status().ok()) return FromRocks(it->status(), "user listing");
  }
  std::sort(users.begin(), users.end(), [](const auth::User& a, const auth::User& b) {
    return a.created_at != b.created_at ? a.created_at < b.created_at : a.user_id < b.user_id;
  });
  return users;
}

Status RocksDbUserStore::Update(const auth::User& user) {
  std::lock_guard lock(write_mutex_);
  auto existing = GetById(user.user_id);
  if (!existing.ok()) return existing.status();
  auth::User updated = user;
  updated.username = existing->username;  // usernames never change
  const std::string record = rocks::EncodeUser(updated);
  return engine_->WriteRecords([&](rocksdb::WriteBatch& batch) {
    batch.Put(engine_->family(RocksDbEngine::kUsers), updated.user_id, record);
  });
}

Status RocksDbUserStore::Delete(const std::string& user_id) {
  std::lock_guard lock(write_mutex_);
  auto existing = GetById(user_id);
  if (!existing.ok()) return existing.status();
  return engine_->WriteRecords([&](rocksdb::WriteBatch& batch) {
    batch.Delete(engine_->family(RocksDbEngine::kUsers), user_id);
    batch.Delete(engine_->family(RocksDbEngine::kUsernames), existing->username);
  });
}

}  // namespace magnetar::storage
