#pragma once

// A bounded memo of access tokens whose signature and claims have already been verified, so a
// client that sends the same token on every request pays for HMAC, base64 and JSON once per token
// instead of once per request (the profile of a single publish had JWT verification at ~40% of
// its instructions). Only what cannot change is memoised: the signature and the claims are fixed
// by the token's bytes, so a hit is as good as a fresh Verify except for time, and `exp` is
// re-checked against the clock on every hit. Revocation (the deny-list) and the user's state are
// not cached: the Authenticator checks them on every request (D10, D12).
//
// Thread-safe; sharded so threads rarely meet on one mutex. Bounded: a full shard drops an
// arbitrary entry, which only costs that token one more full verification.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "auth/jwt.h"

namespace magnetar::auth {

class VerifiedTokenCache {
 public:
  static constexpr size_t kDefaultCapacity = 8192;

  explicit VerifiedTokenCache(size_t capacity = kDefaultCapacity);

  // The claims of `token` if it was inserted and has not expired (exp > now_seconds, no leeway,
  // as JwtCodec::Verify). An expired entry is dropped.
  std::optional<AccessClaims> Find(std::string_view token, int64_t now_seconds);

  // Remembers that `token` verified to `claims`. Call only after a successful JwtCodec::Verify.
  void Insert(std::string_view token, const AccessClaims& claims);

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, AccessClaims, Hash, std::equal_to<>> entries;
  };
  static constexpr size_t kShards = 8;

  Shard& ShardFor(std::string_view token);

  const size_t per_shard_capacity_;
  std::array<Shard, kShards> shards_;
};

}  // namespace magnetar::auth
