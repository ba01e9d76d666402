#pragma once

// Where users live. The auth module defines the interface; storage engines implement it
// (storage/memory, later rocksdb and redis). Implementations must be thread-safe: every method may
// be called concurrently from any thread. Methods may block on storage I/O, so callers on an I/O
// thread should expect the cost of one storage round trip.

#include <string>
#include <vector>

#include "auth/user.h"
#include "common/status.h"

namespace magnetar::auth {

class UserStore {
 public:
  virtual ~UserStore() = default;

  // AlreadyExists("Username '<name>' already exists") when the username is taken.
  virtual Status Create(const User& user) = 0;
  // NotFound when absent.
  virtual Result<User> GetById(const std::string& user_id) = 0;
  // NotFound when absent. Exact (case-sensitive) match.
  virtual Result<User> GetByUsername(const std::string& username) = 0;
  // Every user; order unspecified.
  virtual Result<std::vector<User>> List() = 0;
  // Replaces the record with the same user_id; the stored username is kept (it cannot change).
  // NotFound when absent.
  virtual Status Update(const User& user) = 0;
  // NotFound when absent.
  virtual Status Delete(const std::string& user_id) = 0;
};

}  // namespace magnetar::auth
