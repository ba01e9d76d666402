#pragma once

// A real Redis for the tests of this process: Debian's redis-server, started on first use on a
// free loopback port with a temporary directory (AOF on, appendfsync always, no RDB snapshots),
// stopped when the process exits (and killed by the kernel if the process dies first).
//
// MAGNETAR_TEST_REDIS_URL=redis://host:port uses that Redis instead. Tests FLUSHDB it.
//
// There is no skip: when redis-server is missing or does not start, the Redis tests fail with
// the reason (scripts/deps.sh installs it).

#include <string>

#include "common/status.h"

namespace magnetar::contract {

Result<std::string> TestRedisUrl();

// Stops and starts the test Redis again on the same port and directory (it replays its AOF).
// Only for the Redis this process started.
Status RestartTestRedis();
Status StopTestRedis();
Status StartTestRedis();

}  // namespace magnetar::contract
