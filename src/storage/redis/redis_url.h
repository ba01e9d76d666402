#pragma once

// The --storage value that selects the Redis engine:
//   redis://[user:password@]host[:port][/db]     (port 6379, db 0 by default)
//   rediss://...                                  (TLS)
// The password never appears in Describe() or in any error this module returns.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace magnetar::storage {

struct RedisEndpoint {
  std::string host;
  uint16_t port = 6379;
  std::string user;      // empty = the default user (AUTH <password>)
  std::string password;  // empty = no AUTH
  int db = 0;
  bool tls = false;

  // "redis://host:port/db", with "user:***@" when credentials are set: safe to log.
  std::string Describe() const;
};

// True when `storage` names the Redis engine (starts with redis:// or rediss://).
bool IsRedisUrl(std::string_view storage);

// kInvalidArgument with a message that names the problem (never the password).
Result<RedisEndpoint> ParseRedisUrl(std::string_view url);

}  // namespace magnetar::storage
