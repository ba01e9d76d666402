#include "relay/rate_limiter.h"

#include <algorithm>

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

}  // namespace

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
  const RateDecision d = limiter.Hit(route, user_id, limit_per_minute, cost);
  if (d.allowed) return std::nullopt;
  CountRejection(route);
  return http::Response::Json(429, R"({"error":"Quota exceeded: )" +
                                       std::to_string(limit_per_minute) +
                                       R"( per 1 minute per user"})")
      .WithHeader("Retry-After", std::to_string(d.retry_after_seconds));
}

std::optional<http::Response> CheckRateLimit(RateLimiter& limiter, std::string_view route,
                                             int limit_per_minute,
                                             const http::RequestContext& ctx) {
  if (limit_per_minute <= 0) return std::nullopt;
  const RateDecision d = limiter.Hit(route, ctx.remote.address().to_string(), limit_per_minute);
  if (d.allowed) return std::nullopt;
  CountRejection(route);
  return RateLimitedResponse(limit_per_minute, d.retry_after_seconds);
}

}  // namespace magnetar::relay
