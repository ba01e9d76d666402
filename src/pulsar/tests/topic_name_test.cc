#include "pulsar/topic_name.h"

#include <gtest/gtest.h>

namespace magnetar::pulsar {
namespace {

TEST(PulsarTopicName, FullShortAndNonPersistentForms) {
  std::string error;
  auto full = ParsePulsarTopic("persistent://alice/default/jobs", &error);
  ASSERT_TRUE(full) << error;
  EXPECT_TRUE(full->persistent);
  EXPECT_EQ(full->tenant, "alice");
  EXPECT_EQ(full->ns, "default");
  EXPECT_EQ(full->local, "jobs");
  EXPECT_EQ(full->FullName(), "persistent://alice/default/jobs");

  auto short_name = ParsePulsarTopic("jobs", &error);
  ASSERT_TRUE(short_name);
  EXPECT_EQ(short_name->FullName(), "persistent://public/default/jobs");

  auto three = ParsePulsarTopic("bob/default/x-partition-2", &error);
  ASSERT_TRUE(three);
  EXPECT_EQ(three->tenant, "bob");
  EXPECT_EQ(three->local, "x-partition-2");

  auto np = ParsePulsarTopic("non-persistent://alice/default/t", &error);
  ASSERT_TRUE(np);
  EXPECT_FALSE(np->persistent);
}

TEST(PulsarTopicName, MalformedNamesSayWhy) {
  std::string error;
  EXPECT_FALSE(ParsePulsarTopic("http://a/b/c", &error));
  EXPECT_NE(error.find("domain"), std::string::npos);
  EXPECT_FALSE(ParsePulsarTopic("persistent://a/b", &error));
  EXPECT_FALSE(ParsePulsarTopic("persistent://a/b/c/d", &error));
  EXPECT_FALSE(ParsePulsarTopic("persistent:///b/c", &error));
  EXPECT_FALSE(ParsePulsarTopic("persistent://a/b/", &error));
  EXPECT_FALSE(ParsePulsarTopic("persistent://a/b/sp ace", &error));
  EXPECT_FALSE(ParsePulsarTopic("", &error));
  EXPECT_FALSE(ParsePulsarTopic(std::string(300, 'x'), &error));
}

}  // namespace
}  // namespace magnetar::pulsar
