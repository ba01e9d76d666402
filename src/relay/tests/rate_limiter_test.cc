#include "relay/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace magnetar::relay {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class RateLimiterTest : public ::testing::Test {
 protected:
  bool Allowed(std::string_view route = "login", std::string_view client = "127.0.0.2",
               int limit = 5) {
    return limiter_.Hit(route, client, limit).allowed;
  }

  ManualClock clock_;
  LocalRateLimiter limiter_{clock_};
};

TEST_F(RateLimiterTest, AllowsLimitThenRefuses) {
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(Allowed()) << i;
  const RateDecision refused = limiter_.Hit("login", "127.0.0.2", 5);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_seconds, 60);
  EXPECT_FALSE(Allowed());
}

TEST_F(RateLimiterTest, RetryAfterCountsDownToWindowEnd) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Allowed());
  clock_.Advance(seconds(15));
  EXPECT_EQ(limiter_.Hit("login", "127.0.0.2", 5).retry_after_seconds, 45);
  clock_.Advance(milliseconds(44'500));  // 0.5 s left: rounded up, never 0
  EXPECT_EQ(limiter_.Hit("login", "127.0.0.2", 5).retry_after_seconds, 1);
}

TEST_F(RateLimiterTest, PeekTellsWithoutCounting) {
  EXPECT_TRUE(limiter_.Peek("guess", "127.0.0.2", 2).allowed);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(limiter_.Peek("guess", "127.0.0.2", 2).allowed);
  ASSERT_TRUE(limiter_.Hit("guess", "127.0.0.2", 2).allowed);
  EXPECT_TRUE(limiter_.Peek("guess", "127.0.0.2", 2).allowed);
  ASSERT_TRUE(limiter_.Hit("guess", "127.0.0.2", 2).allowed);
  const RateDecision peeked = limiter_.Peek("guess", "127.0.0.2", 2);
  EXPECT_FALSE(peeked.allowed);
  EXPECT_EQ(peeked.retry_after_seconds, 60);
  EXPECT_TRUE(limiter_.Peek("guess", "127.0.0.3", 2).allowed);  // another client
  clock_.Advance(seconds(60));
  EXPECT_TRUE(limiter_.Peek("guess", "127.0.0.2", 2).allowed);  // the window ended
}

TEST_F(RateLimiterTest, WindowResetsAfterOneMinute) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Allowed());
  clock_.Advance(milliseconds(59'999));
  EXPECT_FALSE(Allowed());
  clock_.Advance(milliseconds(1));
  // Refused requests were not counted: the new window has the full budget.
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(Allowed()) << i;
  EXPECT_FALSE(Allowed());
}

TEST_F(RateLimiterTest, WindowStartsAtFirstRequest) {
  ASSERT_TRUE(Allowed());
  clock_.Advance(seconds(50));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Allowed());
  EXPECT_EQ(limiter_.Hit("login", "127.0.0.2", 5).retry_after_seconds, 10);
  clock_.Advance(seconds(10));
  EXPECT_TRUE(Allowed());
}

TEST_F(RateLimiterTest, KeyedByRouteAndClient) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Allowed("login", "127.0.0.2"));
  EXPECT_FALSE(Allowed("login", "127.0.0.2"));
  EXPECT_TRUE(Allowed("login", "127.0.0.3"));
  EXPECT_TRUE(Allowed("refresh", "127.0.0.2"));
}

TEST_F(RateLimiterTest, ZeroMeansUnlimited) {
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(Allowed("publish", "127.0.0.2", 0));
  EXPECT_EQ(limiter_.size(), 0u);
}

TEST_F(RateLimiterTest, EndedWindowsArePruned) {
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(Allowed("login", "10.0.0." + std::to_string(i)));
  EXPECT_EQ(limiter_.size(), 100u);
  clock_.Advance(seconds(61));
  ASSERT_TRUE(Allowed("login", "10.1.0.1"));
  EXPECT_EQ(limiter_.size(), 1u);
}

TEST_F(RateLimiterTest, ConcurrentHitsNeverExceedTheLimit) {
  constexpr int kLimit = 120;
  std::atomic<int> allowed = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        if (limiter_.Hit("publish", "127.0.0.9", kLimit).allowed) ++allowed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), kLimit);
}

TEST_F(RateLimiterTest, HttpResponseKeyedByPeerAddress) {
  http::RequestContext ctx;
  ctx.remote = boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.7"), 40000);
  for (int i = 0; i < 2; ++i) EXPECT_FALSE(CheckRateLimit(limiter_, "bulk", 2, ctx)) << i;
  // Another port of the same address shares the budget.
  ctx.remote.port(40001);
  auto refused = CheckRateLimit(limiter_, "bulk", 2, ctx);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 429u);
  EXPECT_EQ(refused->body, R"({"error":"Rate limit exceeded: 2 per 1 minute"})");
  ASSERT_EQ(refused->headers.size(), 1u);
  EXPECT_EQ(refused->headers[0].first, "Retry-After");
  EXPECT_EQ(refused->headers[0].second, "60");
  // Unlimited routes never count.
  EXPECT_FALSE(CheckRateLimit(limiter_, "other", 0, ctx));
}

TEST_F(RateLimiterTest, CostCountsSeveralUnits) {
  EXPECT_TRUE(limiter_.Hit("quota", "user-1", 10, 4).allowed);
  EXPECT_TRUE(limiter_.Hit("quota", "user-1", 10, 6).allowed);
  const RateDecision refused = limiter_.Hit("quota", "user-1", 10, 1);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_seconds, 60);
  clock_.Advance(seconds(60));
  EXPECT_TRUE(limiter_.Hit("quota", "user-1", 10, 9).allowed);
  // What is left (1) is too little for 2, and the refusal counts nothing: 1 still fits.
  EXPECT_FALSE(limiter_.Hit("quota", "user-1", 10, 2).allowed);
  EXPECT_TRUE(limiter_.Hit("quota", "user-1", 10, 1).allowed);
}

TEST_F(RateLimiterTest, CostAboveTheWholeLimitIsNeverAllowed) {
  const RateDecision refused = limiter_.Hit("quota", "user-1", 5, 6);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_seconds, 60);
  EXPECT_EQ(limiter_.size(), 0u);  // nothing counted
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter_.Hit("quota", "user-1", 5).allowed) << i;
}

TEST_F(RateLimiterTest, UserQuotaIsKeyedByUserNotAddress) {
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(CheckUserQuota(limiter_, "quota_publish", "u1", 3)) << i;
  auto refused = CheckUserQuota(limiter_, "quota_publish", "u1", 3);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 429u);
  EXPECT_EQ(refused->body, R"({"error":"Quota exceeded: 3 per 1 minute per user"})");
  ASSERT_EQ(refused->headers.size(), 1u);
  EXPECT_EQ(refused->headers[0].first, "Retry-After");
  EXPECT_EQ(refused->headers[0].second, "60");
  EXPECT_FALSE(CheckUserQuota(limiter_, "quota_publish", "u2", 3));  // another user
  EXPECT_FALSE(CheckUserQuota(limiter_, "quota_poll", "u1", 3));     // another quota
  EXPECT_FALSE(CheckUserQuota(limiter_, "quota_publish", "u1", 0));  // no quota
  EXPECT_TRUE(CheckUserQuota(limiter_, "quota_publish", "u2", 3, 3));  // a bulk of 3 > 2 left
}

TEST(UnlimitedRateLimiterTest, AllowsEverything) {
  UnlimitedRateLimiter limiter;
  http::RequestContext ctx;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(limiter.Hit("login", "127.0.0.2", 1).allowed);
    ASSERT_TRUE(limiter.Peek("login", "127.0.0.2", 1).allowed);
    ASSERT_FALSE(CheckRateLimit(limiter, "login", 1, ctx));
    ASSERT_FALSE(CheckUserQuota(limiter, "quota_publish", "u1", 1, 5));
  }
}

}  // namespace
}  // namespace magnetar::relay
