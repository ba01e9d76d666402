#pragma once

// Request rate limits of the relay API (spec §5.9 with correction D13): N requests per minute per
// client address and route, fixed one-minute windows, and a 429
// {"error":"Rate limit exceeded: <N> per 1 minute"} that carries Retry-After (the seconds until
// the window resets). Routes check after authentication and validation (spec §0.3), so requests
// refused with 401/403/422 never consume budget.
//
// RateLimiter is the seam: LocalRateLimiter counts in this process's memory, which holds across
// all of its threads; SharedRateLimiter counts in the engine's core::SharedLimits (Redis: one Lua
// script per check) so the limits hold across every node of a cluster. The request paths use
// HitAsync, which never waits on an I/O thread for the shared store; a shared store that cannot
// be reached fails the request with 503 (`unavailable`).

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.h"
#include "core/shared_limits.h"
#include "http/types.h"

namespace magnetar::relay {

struct RateDecision {
  bool allowed = true;
  // When refused: whole seconds (at least 1) until the window resets and the request may pass.
  int64_t retry_after_seconds = 0;
  // Refused because the shared counters cannot be reached (answer 503, not 429).
  bool unavailable = false;
};

using DecisionCallback = std::function<void(RateDecision)>;

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

  // True when Hit() waits for a shared store (use HitAsync on I/O threads); false when it is a
  // quick in-memory count.
  virtual bool waits() const { return false; }

  // Hit() without waiting: `done` runs on `executor` (or inline, before this returns, for a
  // limiter that never waits). The request paths use this one.
  virtual void HitAsync(std::string_view route, std::string_view client, int limit_per_minute,
                        int cost, const boost::asio::any_io_executor& executor,
                        DecisionCallback done) {
    (void)executor;
    done(Hit(route, client, limit_per_minute, cost));
  }
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

// Counts in the engine's shared counters (Redis), so every node sees the same windows (D13):
// fixed one-minute windows keyed "<route>:<client>". HitAsync posts its answer to the executor;
// Hit and Peek wait for Redis on the calling thread (kept for the rare device-flow checks and the
// eFTL login, which run on the blocking pool or are rate-limited by design). When Redis cannot be
// reached the decision is refused with `unavailable` set.
class SharedRateLimiter final : public RateLimiter {
 public:
  // `shared` outlives this limiter.
  explicit SharedRateLimiter(core::SharedLimits& shared) : shared_(shared) {}

  RateDecision Hit(std::string_view route, std::string_view client, int limit_per_minute,
                   int cost = 1) override;
  RateDecision Peek(std::string_view route, std::string_view client,
                    int limit_per_minute) override;
  void HitAsync(std::string_view route, std::string_view client, int limit_per_minute, int cost,
                const boost::asio::any_io_executor& executor, DecisionCallback done) override;
  bool waits() const override { return true; }

 private:
  void Count(std::string_view route, std::string_view client, int limit_per_minute, int cost,
             DecisionCallback done);
  RateDecision Wait(std::string_view route, std::string_view client, int limit_per_minute,
                    int cost);
  core::SharedLimits& shared_;
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

// The asynchronous forms the request paths use: `then(nullopt)` when the request may proceed,
// else `then(429 or 503)`; `then` runs on ctx.executor (inline for a local limiter).
using LimitCallback = std::function<void(std::optional<http::Response>)>;
void CheckRateLimitAsync(RateLimiter& limiter, std::string_view route, int limit_per_minute,
                         const http::RequestContext& ctx, LimitCallback then);
void CheckUserQuotaAsync(RateLimiter& limiter, std::string_view route, std::string_view user_id,
                         int limit_per_minute, int cost,
                         const boost::asio::any_io_executor& executor, LimitCallback then);

// 503 {"detail":"Rate limit service unavailable"}: the shared counters cannot be reached.
http::Response LimitsUnavailableResponse();

// {"error":"Rate limit exceeded: <N> per 1 minute"} with Retry-After.
http::Response RateLimitedResponse(int limit_per_minute, int64_t retry_after_seconds);

}  // namespace magnetar::relay
