#include "storage/memory/memory_user_store.h"

#include <algorithm>
#include <utility>

namespace magnetar::storage {
namespace {

Status UserIdNotFound(const std::string& user_id) {
  return NotFound("User with ID '" + user_id + "' not found");
}

}  // namespace

Status MemoryUserStore::Create(const auth::User& user) {
  std::lock_guard lock(mutex_);
  if (id_by_username_.contains(user.username)) {
    return AlreadyExists("Username '" + user.username + "' already exists");
  }
  if (users_by_id_.contains(user.user_id)) {
    return AlreadyExists("User with ID '" + user.user_id + "' already exists");
  }
  users_by_id_.emplace(user.user_id, user);
  id_by_username_.emplace(user.username, user.user_id);
  return Status::Ok();
}

Result<auth::User> MemoryUserStore::GetById(const std::string& user_id) {
  std::lock_guard lock(mutex_);
  auto it = users_by_id_.find(user_id);
  if (it == users_by_id_.end()) return UserIdNotFound(user_id);
  return it->second;
}

Result<auth::User> MemoryUserStore::GetByUsername(const std::string& username) {
  std::lock_guard lock(mutex_);
  auto index = id_by_username_.find(username);
  if (index == id_by_username_.end()) return NotFound("User '" + username + "' not found");
  return users_by_id_.at(index->second);
}

Result<std::vector<auth::User>> MemoryUserStore::List() {
  std::vector<auth::User> users;
  {
    std::lock_guard lock(mutex_);
    users.reserve(users_by_id_.size());
    for (const auto& [id, user] : users_by_id_) users.push_back(user);
  }
  std::sort(users.begin(), users.end(), [](const auth::User& a, const auth::User& b) {
    return a.created_at != b.created_at ? a.created_at < b.created_at : a.user_id < b.user_id;
  });
  return users;
}

Status MemoryUserStore::Update(const auth::User& user) {
  std::lock_guard lock(mutex_);
  auto it = users_by_id_.find(user.user_id);
  if (it == users_by_id_.end()) return UserIdNotFound(user.user_id);
  std::string username = std::move(it->second.username);
  it->second = user;
  it->second.username = std::move(username);  // usernames never change
  return Status::Ok();
}

Status MemoryUserStore::Delete(const std::string& user_id) {
  std::lock_guard lock(mutex_);
  auto it = users_by_id_.find(user_id);
  if (it == users_by_id_.end()) return UserIdNotFound(user_id);
  id_by_username_.erase(it->second.username);
  users_by_id_.erase(it);
  return Status::Ok();
}

}  // namespace magnetar::storage
