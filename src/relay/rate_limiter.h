#pragma once

// Request rate limits of the relay API (spec §5.9 with correction D13): N requests per minute per
// client address and route, fixed one-minute windows, and a 429
// {"error":"Rate limit exceeded: <N> per 1 minute"} that carries Retry-After (the seconds until
// the window resets). Routes check after authentication and validation (spec §0.3), so requests
// refused with 401/403/422 never consume budget.
//
// RateLimiter is the seam: LocalRateLimiter counts in this process's memory, which holds across
// all of its threads; a cluster-wide counter (e.g. INCR + EXPIRE on the Redis engine) implements
// the same interface to make the limits hold across nodes.

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.h"
#include "http/types.h"

namespace magnetar::relay {

struct RateDecision {
  bool allowed = true;
  // When refused: whole seconds (at least 1) until the window resets and the request may pass.
  int64_t retry_after_seconds = 0;
};

// Implementations must be thread-safe: Hit() is called concurrently from every I/O thread.
class RateLimiter {
 public:
  virtual ~RateLimiter() = default;

  // Counts one request of `client` on `route` against `limit_per_minute` and says whether it may
  // proceed. A refused request is not counted. `limit_per_minute` <= 0 means unlimited. `cost`
  // counts it as that many (a quota of messages, where one bulk request carries several); a
  // cost above the whole limit is always refused.
  virtual RateDecision Hit(std::string_view route, std::string_view client,
                           int limit_per_minute, int cost = 1) = 0;

  // What Hit() would decide now, without counting anything. For budgets spent only by some
  // outcomes (e.g. failed user-code lookups): Peek before the attempt, Hit after a failure.
  virtual RateDecision Peek(std::string_view route, std::string_view client,
                            int limit_per_minute) = 0;
};

// Fixed one-minute windows in process memory, keyed by (route, client); a window starts with the
// first request after the previous one ended. Thread-safe (one mutex; a hit is a hash lookup).
// Windows that have ended are dropped at most once a minute, so memory follows the number of
// clients seen in the last minute or two.
class LocalRateLimiter final : public RateLimiter {
 public:
  explicit LocalRateLimiter(const Clock& clock) : clock_(clock) {}

  RateDecision Hit(std::string_view route, std::string_view client,
                   int limit_per_minute, int cost = 1) override;
  RateDecision Peek(std::string_view route, std::string_view client,
                    int limit_per_minute) override;

  // Windows currently held (for tests).
  size_t size() const;

 private:
  struct Window {
    UnixMicros start = 0;
    int64_t count = 0;
  };

  const Clock& clock_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Window> windows_;
  UnixMicros last_prune_ = 0;
};

// `--rate-limits off` (load tests): allows everything and counts nothing.
class UnlimitedRateLimiter final : public RateLimiter {
 public:
  RateDecision Hit(std::string_view, std::string_view, int, int = 1) override { return {}; }
  RateDecision Peek(std::string_view, std::string_view, int) override { return {}; }
};

// A per-user quota (D13): `cost` units of `route` for `user_id` against `limit_per_minute`
// (<= 0: no quota). The 429 to send when over it (with Retry-After), nullopt when it may proceed.
std::optional<http::Response> CheckUserQuota(RateLimiter& limiter, std::string_view route,
                                             std::string_view user_id, int limit_per_minute,
                                             int cost = 1);

// The relay's use of a RateLimiter on one request: keyed by the peer's IP address. Returns the
// 429 response to send when the request is over the limit, nullopt when it may proceed.
std::optional<http::Response> CheckRateLimit(RateLimiter& limiter, std::string_view route,
                                             int limit_per_minute,
                                             const http::RequestContext& ctx);

// {"error":"Rate limit exceeded: <N> per 1 minute"} with Retry-After.
http::Response RateLimitedResponse(int limit_per_minute, int64_t retry_after_seconds);

}  // namespace magnetar::relay
