#pragma once

// The two records a token check reads on every request (relay spec §0.3 steps 3-4): the deny-list
// record of the token's jti and the token's user. An engine whose every read is a network round
// trip (Redis) implements this to read both in one; the Authenticator otherwise reads them one
// after the other from the KvStore and the UserStore. Thread-safe; may block like those stores.

#include <optional>
#include <string>

#include "auth/user.h"
#include "common/status.h"

namespace magnetar::auth {

class TokenRecords {
 public:
  virtual ~TokenRecords() = default;

  struct Read {
    bool revoked = false;      // a live record under `deny_key`
    std::optional<User> user;  // nullopt: no such user
  };
  // `deny_key`: the KvStore key of the jti's deny-list record; empty: the token has no jti, so
  // it cannot be revoked and only the user is read. Errors (e.g. Unavailable) as the stores'.
  virtual Result<Read> ReadBoth(const std::string& deny_key, const std::string& user_id) = 0;
};

}  // namespace magnetar::auth
