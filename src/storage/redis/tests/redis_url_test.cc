#include "storage/redis/redis_url.h"

#include <gtest/gtest.h>

namespace magnetar::storage {
namespace {

TEST(RedisUrlTest, ParsesEveryPart) {
  auto e = ParseRedisUrl("redis://bob:p%40ss:word@cache.local:6380/3");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->host, "cache.local");
  EXPECT_EQ(e->port, 6380);
  EXPECT_EQ(e->user, "bob");
  EXPECT_EQ(e->password, "p@ss:word");
  EXPECT_EQ(e->db, 3);
  EXPECT_FALSE(e->tls);
  EXPECT_EQ(e->Describe(), "redis://bob:***@cache.local:6380/3");
}

TEST(RedisUrlTest, DefaultsAndShortForms) {
  auto e = ParseRedisUrl("redis://127.0.0.1");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->port, 6379);
  EXPECT_EQ(e->db, 0);
  EXPECT_TRUE(e->password.empty());
  auto p = ParseRedisUrl("redis://secret@h:1");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->password, "secret");
  EXPECT_TRUE(p->user.empty());
  EXPECT_EQ(p->Describe().find("secret"), std::string::npos);
  auto v6 = ParseRedisUrl("rediss://[::1]:7000");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 7000);
  EXPECT_TRUE(v6->tls);
}

TEST(RedisUrlTest, RefusesBadUrlsWithoutEchoingThePassword) {
  for (const char* bad : {"http://h:1", "redis://", "redis://h:0", "redis://h:65536",
                          "redis://h:x", "redis://h:1/x", "redis://u:p%4@h:1", "redis://[::1"}) {
    auto e = ParseRedisUrl(bad);
    EXPECT_FALSE(e.ok()) << bad;
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  }
  auto e = ParseRedisUrl("redis://u:topsecret@h:99999");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message().find("topsecret"), std::string::npos);
  EXPECT_TRUE(IsRedisUrl("redis://h"));
  EXPECT_TRUE(IsRedisUrl("rediss://h"));
  EXPECT_FALSE(IsRedisUrl("rocksdb"));
}

}  // namespace
}  // namespace magnetar::storage
