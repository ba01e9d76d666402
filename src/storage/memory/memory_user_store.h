#pragma once

// The memory engine's user records (auth::UserStore). Thread-safe: one mutex guards the records
// and the username index; every method copies users in or out under it, so callers never hold
// references into the store.

#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth/user_store.h"

namespace magnetar::storage {

class MemoryUserStore final : public auth::UserStore {
 public:
  Status Create(const auth::User& user) override;
  Result<auth::User> GetById(const std::string& user_id) override;
  Result<auth::User> GetByUsername(const std::string& username) override;
  // Ordered by (created_at, user_id).
  Result<std::vector<auth::User>> List() override;
  Status Update(const auth::User& user) override;
  Status Delete(const std::string& user_id) override;

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, auth::User> users_by_id_;
  std::unordered_map<std::string, std::string> id_by_username_;
};

}  // namespace magnetar::storage
