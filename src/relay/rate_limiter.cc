#include "relay/rate_limiter.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <future>

#include "common/metrics.h"

namespace magnetar::relay {

namespace {

constexpr UnixMicros kWindowMicros = 60LL * 1000000;

// magnetar_rate_limited_total{route}: `route` is one of the relay's fixed route names ("login",
// "publish", "quota_publish", ...), never a client address or user.
void CountRejection(std::string_view route) {
  metrics::Registry::Default()
      .GetCounter("magnetar_rate_limited_total",
                  "Requests refused with 429 by a per-address rate limit or a per-user quota, by "
                  "limit.",
                  {{"route", std::string(route)}})
      .Inc();
}

std::string ClientOf(const http::RequestContext& ctx) { return ctx.remote.address().to_string(); }

http::Response QuotaExceeded(int limit_per_minute, int64_t retry_after_seconds) {
  return http::Response::Json(429, R"({"error":"Quota exceeded: )" +
                                       std::to_string(limit_per_minute) +
                                       R"( per 1 minute per user"})")
      .WithHeader("Retry-After", std::to_string(retry_after_seconds));
}

// The response for a decision (nullopt: proceed), counting refusals.
std::optional<http::Response> RateOutcome(const RateDecision& d, std::string_view route,
                                          int limit_per_minute) {
  if (d.allowed) return std::nullopt;
  if (d.unavailable) return LimitsUnavailableResponse();
  CountRejection(route);
  return RateLimitedResponse(limit_per_minute, d.retry_after_seconds);
}

std::optional<http::Response> QuotaOutcome(const RateDecision& d, std::string_view route,
                                           int limit_per_minute) {
  if (d.allowed) return std::nullopt;
  if (d.unavailable) return LimitsUnavailableResponse();
  CountRejection(route);
  return QuotaExceeded(limit_per_minute, d.retry_after_seconds);
}

RateDecision FromShared(const Result<core::SharedLimits::WindowDecision>& r) {
  RateDecision d;
  if (!r.ok()) {
    d.allowed = false;
    d.unavailable = true;
    d.retry_after_seconds = 1;
    return d;
  }
  d.allowed = r->allowed;
  if (!d.allowed) d.retry_after_seconds = std::max<int64_t>(1, (r->retry_after_ms + 999) / 1000);
  return d;
}

}  // namespace

void SharedRateLimiter::Count(std::string_view route, std::string_view client,
                              int limit_per_minute, int cost, DecisionCallback done) {
  if (limit_per_minute <= 0) return done({});
  // Same rules as LocalRateLimiter: cost < 1 counts as 1 (0 is the shared store's "peek"), and a
  // cost above the whole limit is refused without asking.
  if (cost < 1) cost = 1;
  if (cost > limit_per_minute) return done({false, kWindowMicros / 1000000});
  std::string key;
  key.reserve(route.size() + 1 + client.size());
  key.append(route).push_back(':');
  key.append(client);
  shared_.CountInWindow(key, limit_per_minute, cost, kWindowMicros / 1000,
                         [done = std::move(done)](auto r) { done(FromShared(r)); });
}

RateDecision SharedRateLimiter::Wait(std::string_view route, std::string_view client,
                                     int limit_per_minute, int cost) {
  if (limit_per_minute <= 0) return {};
  auto promise = std::make_shared<std::promise<RateDecision>>();
  auto future = promise->get_future();
  if (cost == 0) {
    std::string key;
    key.append(route).push_back(':');
    key.append(client);
    shared_.CountInWindow(key, limit_per_minute, 0, kWindowMicros / 1000,
                           [promise](auto r) { promise->set_value(FromShared(r)); });
  } else {
    Count(route, client, limit_per_minute, cost,
          [promise](RateDecision d) { promise->set_value(d); });
  }
  return future.get();
}

RateDecision SharedRateLimiter::Hit(std::string_view route, std::string_view client,
                                    int limit_per_minute, int cost) {
  return Wait(route, client, limit_per_minute, cost < 1 ? 1 : cost);
}

RateDecision SharedRateLimiter::Peek(std::string_view route, std::string_view client,
                                     int limit_per_minute) {
  return Wait(route, client, limit_per_minute, 0);
}

void SharedRateLimiter::HitAsync(std::string_view route, std::string_view client,
                                 int limit_per_minute, int cost,
                                 const boost::asio::any_io_executor& executor,
                                 DecisionCallback done) {
  if (limit_per_minute <= 0) return done({});
  Count(route, client, limit_per_minute, cost,
        [executor, done = std::move(done)](RateDecision d) mutable {
          boost::asio::post(executor, [done = std::move(done), d] { done(d); });
        });
}

RateDecision LocalRateLimiter::Hit(std::string_view route, std::string_view client,
                                   int limit_per_minute, int cost) {
  if (limit_per_minute <= 0) return {};
  if (cost < 1) cost = 1;
  // More than a whole window allows (a bulk above a quota): never allowed, nothing counted.
  if (cost > limit_per_minute) return {false, kWindowMicros / 1000000};
  std::string key;
  key.reserve(route.size() + 1 + client.size());
  key.append(route).push_back('\n');
  key.append(client);

  const UnixMicros now = clock_.Now();
  std::lock_guard lock(mutex_);
  if (now - last_prune_ >= kWindowMicros) {
    std::erase_if(windows_,
                  [now](const auto& entry) { return now - entry.second.start >= kWindowMicros; });
    last_prune_ = now;
  }
  Window& w = windows_[std::move(key)];
  if (w.count == 0 || now - w.start >= kWindowMicros) {
    w.start = now;
    w.count = 0;
  }
  if (w.count + cost > limit_per_minute) {
    const UnixMicros left = w.start + kWindowMicros - now;
    return {false, std::max<int64_t>(1, (left + 999999) / 1000000)};
  }
  w.count += cost;
  return {};
}

RateDecision LocalRateLimiter::Peek(std::string_view route, std::string_view client,
                                    int limit_per_minute) {
  if (limit_per_minute <= 0) return {};
  std::string key;
  key.reserve(route.size() + 1 + client.size());
  key.append(route).push_back('\n');
  key.append(client);

  const UnixMicros now = clock_.Now();
  std::lock_guard lock(mutex_);
  auto it = windows_.find(key);
  if (it == windows_.end()) return {};
  const Window& w = it->second;
  if (w.count == 0 || now - w.start >= kWindowMicros || w.count < limit_per_minute) return {};
  const UnixMicros left = w.start + kWindowMicros - now;
  return {false, std::max<int64_t>(1, (left + 999999) / 1000000)};
}

size_t LocalRateLimiter::size() const {
  std::lock_guard lock(mutex_);
  return windows_.size();
}

http::Response RateLimitedResponse(int limit_per_minute, int64_t retry_after_seconds) {
  return http::Response::Json(429, R"({"error":"Rate limit exceeded: )" +
                                       std::to_string(limit_per_minute) + R"( per 1 minute"})")
      .WithHeader("Retry-After", std::to_string(retry_after_seconds));
}

std::optional<http::Response> CheckUserQuota(RateLimiter& limiter, std::string_view route,
                                             std::string_view user_id, int limit_per_minute,
                                             int cost) {
  if (limit_per_minute <= 0) return std::nullopt;
  // Users and addresses never share a bucket: the key space is per route name, and quota routes
  // have their own names.
  return QuotaOutcome(limiter.Hit(route, user_id, limit_per_minute, cost), route,
                      limit_per_minute);
}

std::optional<http::Response> CheckRateLimit(RateLimiter& limiter, std::string_view route,
                                             int limit_per_minute,
                                             const http::RequestContext& ctx) {
  if (limit_per_minute <= 0) return std::nullopt;
  return RateOutcome(limiter.Hit(route, ClientOf(ctx), limit_per_minute), route,
                     limit_per_minute);
}

void CheckRateLimitAsync(RateLimiter& limiter, std::string_view route, int limit_per_minute,
                         const http::RequestContext& ctx, LimitCallback then) {
  if (limit_per_minute <= 0) return then(std::nullopt);
  limiter.HitAsync(route, ClientOf(ctx), limit_per_minute, 1, ctx.executor,
                   [route = std::string(route), limit_per_minute,
                    then = std::move(then)](RateDecision d) {
                     then(RateOutcome(d, route, limit_per_minute));
                   });
}

void CheckUserQuotaAsync(RateLimiter& limiter, std::string_view route, std::string_view user_id,
                         int limit_per_minute, int cost,
                         const boost::asio::any_io_executor& executor, LimitCallback then) {
  if (limit_per_minute <= 0) return then(std::nullopt);
  limiter.HitAsync(route, user_id, limit_per_minute, cost, executor,
                   [route = std::string(route), limit_per_minute,
                    then = std::move(then)](RateDecision d) {
                     then(QuotaOutcome(d, route, limit_per_minute));
                   });
}

http::Response LimitsUnavailableResponse() {
  return http::Response::Json(503, R"({"detail":"Rate limit service unavailable"})");
}

}  // namespace magnetar::relay
