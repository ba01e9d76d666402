#include "auth/verified_token_cache.h"

#include <algorithm>

namespace magnetar::auth {

VerifiedTokenCache::VerifiedTokenCache(size_t capacity)
    : per_shard_capacity_(std::max<size_t>(1, capacity / kShards)) {}

VerifiedTokenCache::Shard& VerifiedTokenCache::ShardFor(std::string_view token) {
  // The map hashes the whole token again; mixing the high bits here keeps the shard choice
  // independent of the bucket choice.
  const size_t h = Hash{}(token);
  return shards_[(h >> 32 ^ h) % kShards];
}

std::optional<AccessClaims> VerifiedTokenCache::Find(std::string_view token, int64_t now_seconds) {
  Shard& shard = ShardFor(token);
  std::lock_guard lock(shard.mutex);
  auto it = shard.entries.find(token);
  if (it == shard.entries.end()) return std::nullopt;
  if (it->second.exp <= now_seconds) {
    shard.entries.erase(it);
    return std::nullopt;
  }
  return it->second;
}

void VerifiedTokenCache::Insert(std::string_view token, const AccessClaims& claims) {
  Shard& shard = ShardFor(token);
  std::lock_guard lock(shard.mutex);
  if (shard.entries.size() >= per_shard_capacity_ && !shard.entries.contains(token)) {
    shard.entries.erase(shard.entries.begin());
  }
  shard.entries.try_emplace(std::string(token), claims);
}

}  // namespace magnetar::auth
