#pragma once

// The Lua scripts the Redis engine runs (EVALSHA; every connection loads them first, so a
// restarted Redis has them again). A script runs atomically, which is what makes id assignment,
// retention and the compare-and-set records correct with any number of Magnetar nodes: Redis
// serialises them. Every key a script touches is passed in KEYS and shares one hash slot.
// Times come from the calling node's clock (ARGV), never from Redis, so tests can move time.

#include <string>
#include <vector>

namespace magnetar::storage::redis {

struct Script {
  const char* name;
  std::string text;
  std::string sha;  // hex SHA-1 of text
};

// KEYS log meta ttl; ARGV now, default max_messages, max_bytes, max_age, channel, then per
// message: byte size, expires_at, body. Returns the assigned ids ("hi-lo"), in order.
const Script& AppendScript();
// KEYS log meta ttl; ARGV now, default max_messages, max_bytes, max_age. Drops expired messages
// (TTL, age) and enforces count and bytes limits. Returns how many it removed.
const Script& SweepScript();
// KEYS log meta ttl; ARGV now, max_messages, max_bytes, max_age: the topic's own retention.
const Script& SetRetentionScript();
// KEYS log meta ttl: removes the messages and the topic's retention, keeps the last id.
const Script& DeleteTopicScript();
// KEYS log meta; returns {count, last id or "", bytes, first id or ""}.
const Script& StatsScript();
// KEYS key; ARGV now, value, expires_at, pexpire ms (0 = none), mode (put | nx | cas), expected.
// Returns 1 when written.
const Script& KvWriteScript();
// KEYS byid byname; ARGV user id, username, record. 0 created, 1 username taken, 2 id taken.
const Script& UserCreateScript();
// KEYS byid byname; ARGV user id, username. 1 deleted, 0 not found.
const Script& UserDeleteScript();
// KEYS hash; ARGV field, value. Sets only an existing field: 1 set, 0 not found.
const Script& HashUpdateScript();
// KEYS counter; ARGV limit, cost, window ms. Fixed window: adds cost unless count + cost > limit
// (cost 0 only asks). Returns {1, 0} when allowed, {0, ms until the window ends} when not.
const Script& WindowCountScript();
// KEYS slots hash (field node id -> "<count>:<lease expiry ms>"); ARGV node, cap, now ms, lease
// ms. Drops expired leases, then takes one slot for the node if fewer than cap are held: 1 or 0.
const Script& SlotAcquireScript();
// KEYS slots hash; ARGV node, now ms, lease ms. Gives back one of the node's slots.
const Script& SlotReleaseScript();
// KEYS slots hash; ARGV node, count, now ms, lease ms. Renews the node's lease and sets its
// count to the node's own (which repairs a lost release, or a field dropped while the node was
// cut off from Redis longer than the lease).
const Script& SlotRenewScript();

std::vector<const Script*> AllScripts();

}  // namespace magnetar::storage::redis
