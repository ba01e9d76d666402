#include "storage/redis/redis_scripts.h"

#include <openssl/evp.h>

namespace magnetar::storage::redis {
namespace {

std::string Sha1Hex(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha1(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

Script Make(const char* name, std::string text) {
  Script s{name, std::move(text), {}};
  s.sha = Sha1Hex(s.text);
  return s;
}

// Shared by the log scripts: the retention in force, and trimming from the front of the log.
// Stream entries hold the fields n (byte size), t (publish time), x (expiry, 0 = none), d (body)
// in that order, so f[2], f[4] and f[6] are their values.
constexpr const char* kRetention = R"lua(
local log, meta, ttl = KEYS[1], KEYS[2], KEYS[3]
local function policy(dm, db, da)
  local own = redis.call('HMGET', meta, 'own', 'rm', 'rb', 'ra')
  if own[1] then return tonumber(own[2]), tonumber(own[3]), tonumber(own[4]) end
  return tonumber(dm), tonumber(db), tonumber(da)
end
-- Drops messages from the front while the log is over its count or bytes limit, or (when
-- `full`) while the front message is older than the age limit or past its TTL.
local function enforce(now, maxm, maxb, maxa, full)
  local count = redis.call('XLEN', log)
  local bytes = tonumber(redis.call('HGET', meta, 'bytes') or '0')
  local removed = 0
  while count > 0 do
    local over = (maxm > 0 and count > maxm) or (maxb > 0 and bytes > maxb)
    if not over and not full then break end
    local want = 1
    if maxm > 0 and count > maxm then want = math.min(count - maxm, 256) end
    local batch = redis.call('XRANGE', log, '-', '+', 'COUNT', want)
    if #batch == 0 then break end
    local stop = false
    for _, e in ipairs(batch) do
      local f = e[2]
      local size, t, x = tonumber(f[2]), tonumber(f[4]), tonumber(f[6])
      local drop = (maxm > 0 and count > maxm) or (maxb > 0 and bytes > maxb)
      if full then
        drop = drop or (maxa > 0 and t + maxa <= now) or (x > 0 and x <= now)
      end
      if not drop then stop = true break end
      redis.call('XDEL', log, e[1])
      if x > 0 then redis.call('ZREM', ttl, e[1]) end
      count = count - 1
      bytes = bytes - size
      removed = removed + 1
    end
    if stop then break end
  end
  if removed > 0 then redis.call('HSET', meta, 'bytes', bytes) end
  return removed
end
)lua";

std::string WithRetention(const char* body) { return std::string(kRetention) + body; }

}  // namespace

const Script& AppendScript() {
  static const Script s = Make("append", WithRetention(R"lua(
local now = tonumber(ARGV[1])
local nowms = math.floor(now / 1000)
local hi, lo = -1, -1
local last = redis.call('HGET', meta, 'last')
if last then
  local h, l = string.match(last, '^(%d+)-(%d+)$')
  hi, lo = tonumber(h), tonumber(l)
end
local ids = {}
local added = 0
local i = 6
while i + 2 <= #ARGV do
  if nowms > hi then hi, lo = nowms, 0 else lo = lo + 1 end
  local id = string.format('%d-%d', hi, lo)
  local expires = ARGV[i + 1]
  redis.call('XADD', log, id, 'n', ARGV[i], 't', ARGV[1], 'x', expires, 'd', ARGV[i + 2])
  if tonumber(expires) > 0 then redis.call('ZADD', ttl, expires, id) end
  added = added + tonumber(ARGV[i])
  ids[#ids + 1] = id
  i = i + 3
end
if #ids == 0 then return ids end
redis.call('HSET', meta, 'last', ids[#ids])
redis.call('HINCRBY', meta, 'bytes', added)
local maxm, maxb, maxa = policy(ARGV[2], ARGV[3], ARGV[4])
enforce(now, maxm, maxb, maxa, false)
redis.call('PUBLISH', ARGV[5], ids[#ids])
return ids
)lua"));
  return s;
}

const Script& SweepScript() {
  static const Script s = Make("sweep", WithRetention(R"lua(
local now = tonumber(ARGV[1])
local removed = 0
-- TTL first: expired messages anywhere in the log, through the ttl index.
local due = redis.call('ZRANGEBYSCORE', ttl, '-inf', ARGV[1], 'LIMIT', 0, 10000)
if #due > 0 then
  local bytes = tonumber(redis.call('HGET', meta, 'bytes') or '0')
  for _, id in ipairs(due) do
    local e = redis.call('XRANGE', log, id, id)
    if #e == 1 then
      bytes = bytes - tonumber(e[1][2][2])
      redis.call('XDEL', log, id)
      removed = removed + 1
    end
    redis.call('ZREM', ttl, id)
  end
  redis.call('HSET', meta, 'bytes', bytes)
end
local maxm, maxb, maxa = policy(ARGV[2], ARGV[3], ARGV[4])
return removed + enforce(now, maxm, maxb, maxa, true)
)lua"));
  return s;
}

const Script& SetRetentionScript() {
  static const Script s = Make("set_retention", WithRetention(R"lua(
redis.call('HSET', meta, 'own', '1', 'rm', ARGV[2], 'rb', ARGV[3], 'ra', ARGV[4])
return enforce(tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), true)
)lua"));
  return s;
}

const Script& DeleteTopicScript() {
  static const Script s = Make("delete_topic", R"lua(
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('HDEL', KEYS[2], 'bytes', 'own', 'rm', 'rb', 'ra')
return 1
)lua");
  return s;
}

const Script& StatsScript() {
  static const Script s = Make("stats", R"lua(
local n = redis.call('XLEN', KEYS[1])
local m = redis.call('HMGET', KEYS[2], 'last', 'bytes')
local first = ''
if n > 0 then first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1][1] end
return {n, m[1] or '', m[2] or '0', first}
)lua");
  return s;
}

const Script& KvWriteScript() {
  static const Script s = Make("kv_write", R"lua(
local key = KEYS[1]
local now, mode = tonumber(ARGV[1]), ARGV[5]
if mode ~= 'put' then
  local cur = redis.call('HMGET', key, 'e', 'v')
  local live = cur[1] and (tonumber(cur[1]) == 0 or tonumber(cur[1]) > now)
  if mode == 'nx' and live then return 0 end
  if mode == 'cas' and not (live and cur[2] == ARGV[6]) then return 0 end
end
redis.call('DEL', key)
redis.call('HSET', key, 'e', ARGV[3], 'v', ARGV[2])
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', key, ARGV[4]) end
return 1
)lua");
  return s;
}

const Script& UserCreateScript() {
  static const Script s = Make("user_create", R"lua(
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 1 end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 2 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 0
)lua");
  return s;
}

const Script& UserDeleteScript() {
  static const Script s = Make("user_delete", R"lua(
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[2]) end
return 1
)lua");
  return s;
}

const Script& HashUpdateScript() {
  static const Script s = Make("hash_update", R"lua(
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
)lua");
  return s;
}

const Script& WindowCountScript() {
  static const Script s = Make("window_count", R"lua(
local limit, cost, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n + math.max(cost, 1) > limit then
  local left = redis.call('PTTL', KEYS[1])
  if left < 0 then left = window end
  return {0, left}
end
if cost == 0 then return {1, 0} end
redis.call('INCRBY', KEYS[1], cost)
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], window) end
return {1, 0}
)lua");
  return s;
}

// Slot hashes: the whole key also expires (twice the lease after its last use), so the hash of a
// user nobody holds slots for goes away by itself.
const Script& SlotAcquireScript() {
  static const Script s = Make("slot_acquire", R"lua(
local node, cap, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local h = redis.call('HGETALL', KEYS[1])
local total, mine = 0, 0
for i = 1, #h, 2 do
  local c, e = string.match(h[i + 1], '^(%d+):(%d+)$')
  c, e = tonumber(c), tonumber(e)
  if c == nil or e <= now then
    redis.call('HDEL', KEYS[1], h[i])
  else
    total = total + c
    if h[i] == node then mine = c end
  end
end
if total >= cap then return 0 end
redis.call('HSET', KEYS[1], node, (mine + 1) .. ':' .. (now + lease))
redis.call('PEXPIRE', KEYS[1], lease * 2)
return 1
)lua");
  return s;
}

const Script& SlotReleaseScript() {
  static const Script s = Make("slot_release", R"lua(
local node, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local v = redis.call('HGET', KEYS[1], node)
if not v then return 0 end
local c = tonumber(string.match(v, '^(%d+):') or '0')
if c <= 1 then
  redis.call('HDEL', KEYS[1], node)
else
  redis.call('HSET', KEYS[1], node, (c - 1) .. ':' .. (now + lease))
end
return 1
)lua");
  return s;
}

const Script& SlotRenewScript() {
  static const Script s = Make("slot_renew", R"lua(
local node, count, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if count <= 0 then
  redis.call('HDEL', KEYS[1], node)
  return 0
end
redis.call('HSET', KEYS[1], node, count .. ':' .. (now + lease))
redis.call('PEXPIRE', KEYS[1], lease * 2)
return 1
)lua");
  return s;
}

std::vector<const Script*> AllScripts() {
  return {&AppendScript(),      &SweepScript(),       &SetRetentionScript(),
          &DeleteTopicScript(), &StatsScript(),       &KvWriteScript(),
          &UserCreateScript(),  &UserDeleteScript(),  &HashUpdateScript(),
          &WindowCountScript(), &SlotAcquireScript(), &SlotReleaseScript(),
          &SlotRenewScript()};
}

}  // namespace magnetar::storage::redis
