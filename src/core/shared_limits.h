#pragma once

// SharedLimits: counters that every node of a cluster shares (correction D13: rate limits and
// per-user caps hold across the whole cluster, not per process). The relay's rate limiter and its
// WebSocket / long-poll caps use it when the engine offers one (the Redis engine does); with one
// node (memory, rocksdb) they count in process memory instead and no SharedLimits exists.
//
// Asynchronous by contract: a call answers through its callback, which runs on a thread of the
// engine (never the caller's I/O thread, and possibly before the call returns on no thread at
// all); the callback must not block and should post its continuation where it belongs. An engine
// that cannot reach its store answers kUnavailable, which callers turn into a 503.

#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"

namespace magnetar::core {

class SharedLimits {
 public:
  virtual ~SharedLimits() = default;

  struct WindowDecision {
    bool allowed = true;
    int64_t retry_after_ms = 0;  // when refused: until the window ends
  };
  using WindowCallback = std::function<void(Result<WindowDecision>)>;
  // Fixed windows of `window_ms` under `key`; a window starts with the first hit after the
  // previous one ended. Adds `cost` unless count + cost would pass `limit` (then refuses and adds
  // nothing). `cost` 0 only asks: refused when the window is already at `limit`.
  virtual void CountInWindow(const std::string& key, int64_t limit, int64_t cost,
                             int64_t window_ms, WindowCallback done) = 0;

  using SlotCallback = std::function<void(Result<bool>)>;
  // Takes one of `cap` slots under `key` (e.g. one user's WebSockets) for this node: true when
  // taken, false when all `cap` are held (by any node). A node holds its slots by a lease that it
  // renews while it runs, so the slots of a node that died come free when its lease expires.
  virtual void AcquireSlot(const std::string& key, int64_t cap, SlotCallback done) = 0;
  // Gives back one slot this node took under `key`. Fire and forget.
  virtual void ReleaseSlot(const std::string& key) = 0;
};

}  // namespace magnetar::core
