#include "relay/refresh_tokens.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "storage/memory/memory_kv_store.h"

namespace magnetar::relay {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

constexpr int kTtlDays = 90;
constexpr int64_t kTtlMicros = int64_t{kTtlDays} * 86400 * 1000000;

class RefreshTokensTest : public ::testing::Test {
 protected:
  IssuedRefreshToken Issue(const std::string& user = "user-1",
                           const std::string& hint = "password-login") {
    auto issued = tokens_.Issue(user, hint);
    EXPECT_TRUE(issued.ok()) << issued.status().ToString();
    return issued.ok() ? *issued : IssuedRefreshToken{};
  }

  // A full refresh as the route does it: check, then rotate.
  Result<IssuedRefreshToken> Refresh(const std::string& wire) {
    auto record = tokens_.CheckForRefresh(wire);
    if (!record.ok()) return record.status();
    return tokens_.Rotate(record->jti);
  }

  RefreshTokenRecord Record(const std::string& jti) {
    auto record = tokens_.Get(jti);
    EXPECT_TRUE(record.ok());
    EXPECT_TRUE(record.ok() && record->has_value()) << jti;
    return record.ok() && *record ? **record : RefreshTokenRecord{};
  }

  static void ExpectInvalid(const Result<IssuedRefreshToken>& r) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
    EXPECT_EQ(r.status().message(), kInvalidRefreshToken);
  }

  ManualClock clock_;
  storage::MemoryKvStore kv_{clock_};
  RefreshTokens tokens_{kv_, clock_, kTtlDays};
};

TEST_F(RefreshTokensTest, IssueWireFormatAndRecord) {
  const auto issued = Issue();
  static const std::regex kWire(
      "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\\.[A-Za-z0-9_-]{43}$");
  EXPECT_TRUE(std::regex_match(issued.wire, kWire)) << issued.wire;
  EXPECT_EQ(issued.wire.substr(0, issued.wire.find('.')), issued.jti);

  const auto record = Record(issued.jti);
  EXPECT_EQ(record.user_id, "user-1");
  EXPECT_EQ(record.client_hint, "password-login");
  EXPECT_FALSE(record.parent_jti);
  EXPECT_FALSE(record.revoked);
  EXPECT_FALSE(record.last_used_at);
  EXPECT_EQ(record.issued_at, clock_.Now());
  EXPECT_EQ(record.expires_at, clock_.Now() + kTtlMicros);

  // Only the hash is stored, never the secret.
  auto raw = kv_.Get(std::string(kRefreshTokenKeyPrefix) + issued.jti);
  ASSERT_TRUE(raw.ok() && raw->has_value());
  const std::string secret = issued.wire.substr(issued.wire.find('.') + 1);
  EXPECT_EQ((*raw)->find(secret), std::string::npos);
  EXPECT_EQ(record.secret_hash.size(), 64u);
}

TEST_F(RefreshTokensTest, ParseRefreshToken) {
  EXPECT_FALSE(ParseRefreshToken("no-dot-here"));
  EXPECT_FALSE(ParseRefreshToken(".secret"));
  EXPECT_FALSE(ParseRefreshToken("jti."));
  EXPECT_FALSE(ParseRefreshToken(""));
  auto parsed = ParseRefreshToken("a.b.c");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->jti, "a");
  EXPECT_EQ(parsed->secret, "b.c");
}

TEST_F(RefreshTokensTest, BadTokensAreInvalid) {
  const auto issued = Issue();
  const std::string jti = issued.jti;
  for (const std::string& wire :
       {std::string("no-dot-here"), std::string(".secret"), std::string("jti."),
        std::string("11111111-1111-4111-8111-111111111111.") + std::string(43, 'A'),
        jti + "." + std::string(43, 'A'), std::string(200, 'x') + ".secret"}) {
    ExpectInvalid(Refresh(wire));
  }
  // A wrong secret did not touch the real token.
  EXPECT_FALSE(Record(jti).revoked);
  EXPECT_TRUE(Refresh(issued.wire).ok());
}

TEST_F(RefreshTokensTest, VerifyDistinguishesMalformedFromUnknown) {
  const auto issued = Issue();
  EXPECT_EQ(tokens_.Verify("garbage").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tokens_.Verify(issued.jti + "." + std::string(43, 'C')).status().code(),
            StatusCode::kNotFound);
  auto ok = tokens_.Verify(issued.wire);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->jti, issued.jti);
}

TEST_F(RefreshTokensTest, RotationIssuesChildWithFreshTtl) {
  const auto first = Issue("user-1", "my-laptop");
  clock_.Advance(hours(24 * 10));
  auto child = Refresh(first.wire);
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  EXPECT_NE(child->wire, first.wire);

  const auto old_record = Record(first.jti);
  EXPECT_TRUE(old_record.revoked);
  EXPECT_EQ(old_record.revoked_reason, "rotated");
  EXPECT_EQ(old_record.last_used_at, clock_.Now());

  const auto record = Record(child->jti);
  EXPECT_EQ(record.parent_jti, first.jti);
  EXPECT_EQ(record.client_hint, "my-laptop");
  EXPECT_EQ(record.user_id, "user-1");
  EXPECT_FALSE(record.revoked);
  EXPECT_EQ(record.expires_at, clock_.Now() + kTtlMicros);

  // The child rotates in turn.
  EXPECT_TRUE(Refresh(child->wire).ok());
}

TEST_F(RefreshTokensTest, ReplayOfRotatedTokenRevokesWholeChain) {
  const auto a = Issue();
  auto b = Refresh(a.wire);
  ASSERT_TRUE(b.ok());
  auto c = Refresh(b->wire);
  ASSERT_TRUE(c.ok());

  ExpectInvalid(Refresh(a.wire));  // replay of the root
  EXPECT_EQ(Record(c->jti).revoked_reason, "replay");
  EXPECT_EQ(Record(b->jti).revoked_reason, "rotated");  // already revoked: reason kept
  ExpectInvalid(Refresh(c->wire));
  auto active = tokens_.ListActive("user-1");
  ASSERT_TRUE(active.ok());
  EXPECT_TRUE(active->empty());
}

TEST_F(RefreshTokensTest, ReplayFromMiddleReachesAncestorsAndDescendants) {
  // a -> b -> c; replaying b (a middle link) still reaches c.
  const auto a = Issue();
  auto b = Refresh(a.wire);
  ASSERT_TRUE(b.ok());
  auto c = Refresh(b->wire);
  ASSERT_TRUE(c.ok());
  ExpectInvalid(Refresh(b->wire));
  EXPECT_EQ(Record(c->jti).revoked_reason, "replay");
}

TEST_F(RefreshTokensTest, IndependentTokensAreUnaffected) {
  // Pair-style issuance: two tokens for one user with no parent link.
  const auto primary = Issue("user-1", "galaxy");
  const auto secondary = Issue("user-1", "galaxy-secondary");
  const auto other_user = Issue("user-2", "x");
  auto rotated = Refresh(primary.wire);
  ASSERT_TRUE(rotated.ok());
  ExpectInvalid(Refresh(primary.wire));  // replay kills primary's chain only
  ExpectInvalid(Refresh(rotated->wire));

  EXPECT_FALSE(Record(secondary.jti).revoked);
  EXPECT_FALSE(Record(other_user.jti).revoked);
  EXPECT_TRUE(Refresh(secondary.wire).ok());
  EXPECT_TRUE(Refresh(other_user.wire).ok());
}

TEST_F(RefreshTokensTest, ConcurrentRotationHasExactlyOneWinner) {
  constexpr int kThreads = 8;
  for (int round = 0; round < 20; ++round) {
    const auto token = Issue("user-race");
    std::latch start(kThreads);
    std::atomic<int> winners = 0;
    std::atomic<int> invalid = 0;
    std::vector<std::string> children(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        auto r = Refresh(token.wire);
        if (r.ok()) {
          ++winners;
          children[i] = r->wire;
        } else if (r.status().code() == StatusCode::kUnauthenticated) {
          ++invalid;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(winners.load(), 1) << "round " << round;
    EXPECT_EQ(invalid.load(), kThreads - 1) << "round " << round;
    // The losers saw a replay: the winner's child dies with the chain.
    for (const auto& child : children) {
      if (!child.empty()) ExpectInvalid(Refresh(child));
    }
  }
}

TEST_F(RefreshTokensTest, ExpiredTokenIsMarkedExpired) {
  const auto token = Issue();
  clock_.Advance(std::chrono::microseconds(kTtlMicros - 1));
  const auto still_valid = Issue();  // issued one microsecond before the first expires
  clock_.Advance(std::chrono::microseconds(1));
  ExpectInvalid(Refresh(token.wire));
  const auto record = Record(token.jti);
  EXPECT_TRUE(record.revoked);
  EXPECT_EQ(record.revoked_reason, "expired");
  EXPECT_TRUE(Refresh(still_valid.wire).ok());

  // Kept an hour past expiry, then gone (still invalid, of course).
  clock_.Advance(hours(2));
  auto gone = tokens_.Get(token.jti);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  ExpectInvalid(Refresh(token.wire));
}

TEST_F(RefreshTokensTest, RevokedTokenIsInvalidWithoutKillingTheChain) {
  const auto a = Issue();
  auto b = Refresh(a.wire);
  ASSERT_TRUE(b.ok());
  const auto other = Issue();
  ASSERT_TRUE(tokens_.Revoke(other.jti, RevokeReason::kLogout).ok());
  ExpectInvalid(Refresh(other.wire));
  EXPECT_EQ(Record(other.jti).revoked_reason, "logout");
  // Revoking again keeps the first reason.
  ASSERT_TRUE(tokens_.Revoke(other.jti, RevokeReason::kAdmin).ok());
  EXPECT_EQ(Record(other.jti).revoked_reason, "logout");
  EXPECT_FALSE(Record(b->jti).revoked);
  EXPECT_EQ(tokens_.Revoke("no-such-jti", RevokeReason::kLogout).code(), StatusCode::kNotFound);
}

TEST_F(RefreshTokensTest, RevokeChain) {
  const auto a = Issue();
  auto b = Refresh(a.wire);
  ASSERT_TRUE(b.ok());
  auto c = Refresh(b->wire);
  ASSERT_TRUE(c.ok());
  const auto independent = Issue();
  ASSERT_TRUE(tokens_.RevokeChain(c->jti, RevokeReason::kLogout).ok());
  EXPECT_EQ(Record(c->jti).revoked_reason, "logout");
  EXPECT_FALSE(Record(independent.jti).revoked);
}

TEST_F(RefreshTokensTest, ListActiveShowsChainHeadsOfThatUser) {
  const auto a = Issue("user-1", "one");
  clock_.Advance(seconds(1));
  const auto b = Issue("user-1", "two");
  Issue("user-2", "elsewhere");
  clock_.Advance(seconds(1));
  auto a2 = Refresh(a.wire);
  ASSERT_TRUE(a2.ok());

  auto active = tokens_.ListActive("user-1");
  ASSERT_TRUE(active.ok());
  ASSERT_EQ(active->size(), 2u);
  EXPECT_EQ((*active)[0].jti, b.jti);  // oldest first
  EXPECT_EQ((*active)[1].jti, a2->jti);
  EXPECT_EQ((*active)[1].client_hint, "one");

  auto none = tokens_.ListActive("nobody");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(RefreshTokensTest, UserIndexDropsSweptRecords) {
  const auto old_token = Issue();
  clock_.Advance(hours(24 * 60));
  const auto newer = Issue();  // rewrites the index, which now outlives the old record
  clock_.Advance(hours(24 * 31));  // the old record expired (plus its grace hour) and is gone
  auto active = tokens_.ListActive("user-1");
  ASSERT_TRUE(active.ok());
  ASSERT_EQ(active->size(), 1u);
  EXPECT_EQ((*active)[0].jti, newer.jti);
  auto index = kv_.Get(std::string(kRefreshUserKeyPrefix) + "user-1");
  ASSERT_TRUE(index.ok() && index->has_value());
  EXPECT_EQ((*index)->find(old_token.jti), std::string::npos);
  EXPECT_NE((*index)->find(newer.jti), std::string::npos);
}

}  // namespace
}  // namespace magnetar::relay
