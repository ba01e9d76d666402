#include "auth/verified_token_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace magnetar::auth {
namespace {

AccessClaims ClaimsFor(const std::string& sub, int64_t exp) {
  AccessClaims c;
  c.sub = sub;
  c.username = "user-" + sub;
  c.permissions = {"read", "write"};
  c.exp = exp;
  c.iat = exp - 600;
  c.jti = "jti-" + sub;
  return c;
}

TEST(VerifiedTokenCacheTest, RemembersClaimsUntilExpiry) {
  VerifiedTokenCache cache;
  EXPECT_FALSE(cache.Find("a.b.c", 100).has_value());
  cache.Insert("a.b.c", ClaimsFor("u1", 200));
  std::optional<AccessClaims> hit = cache.Find("a.b.c", 199);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->sub, "u1");
  EXPECT_EQ(hit->username, "user-u1");
  EXPECT_EQ(hit->jti, "jti-u1");
  EXPECT_EQ(hit->permissions, (std::vector<std::string>{"read", "write"}));
  // exp is exclusive, as in JwtCodec::Verify; an expired entry is gone for good.
  EXPECT_FALSE(cache.Find("a.b.c", 200).has_value());
  EXPECT_FALSE(cache.Find("a.b.c", 150).has_value());
}

TEST(VerifiedTokenCacheTest, MatchesWholeTokensOnly) {
  VerifiedTokenCache cache;
  cache.Insert("header.payload.sig", ClaimsFor("u1", 200));
  EXPECT_FALSE(cache.Find("header.payload.si", 100).has_value());
  EXPECT_FALSE(cache.Find("header.payload.sig2", 100).has_value());
  EXPECT_FALSE(cache.Find("Header.payload.sig", 100).has_value());
  EXPECT_TRUE(cache.Find("header.payload.sig", 100).has_value());
}

TEST(VerifiedTokenCacheTest, StaysWithinCapacity) {
  VerifiedTokenCache cache(64);
  for (int i = 0; i < 10'000; ++i) {
    cache.Insert("token-" + std::to_string(i), ClaimsFor(std::to_string(i), 1000));
  }
  int remembered = 0;
  for (int i = 0; i < 10'000; ++i) {
    if (cache.Find("token-" + std::to_string(i), 10).has_value()) ++remembered;
  }
  EXPECT_GT(remembered, 0);
  EXPECT_LE(remembered, 64);
  // The newest insert is always there: eviction makes room before inserting.
  EXPECT_TRUE(cache.Find("token-9999", 10).has_value());
}

}  // namespace
}  // namespace magnetar::auth
