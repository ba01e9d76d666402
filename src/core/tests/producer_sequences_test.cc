#include "core/producer_sequences.h"

#include <gtest/gtest.h>

#include <string>

namespace magnetar::core {
namespace {

TEST(ProducerSequencesTest, PushedMarkCatchesResendsEvenBeforeTheyPersist) {
  ProducerSequences s;
  EXPECT_FALSE(s.CheckAndPush("p", 0));
  EXPECT_TRUE(s.CheckAndPush("p", 0));  // still in flight: a duplicate all the same
  EXPECT_EQ(s.StoredId("p", 0), std::nullopt);
  s.Persisted("p", 0, MessageId{10, 0});
  EXPECT_EQ(s.StoredId("p", 0), (MessageId{10, 0}));
  EXPECT_FALSE(s.CheckAndPush("p", 5));  // gaps are fine
  EXPECT_TRUE(s.CheckAndPush("p", 3));
  EXPECT_EQ(s.LastSequence("p"), std::optional<uint64_t>(5));
  EXPECT_EQ(s.LastSequence("q"), std::nullopt);
}

TEST(ProducerSequencesTest, FailedAppendLetsTheRetryThrough) {
  ProducerSequences s;
  EXPECT_FALSE(s.CheckAndPush("p", 1));
  s.Persisted("p", 1, MessageId{1, 0});
  EXPECT_FALSE(s.CheckAndPush("p", 2));
  s.Failed("p");  // 2 never made it
  EXPECT_EQ(s.LastSequence("p"), std::optional<uint64_t>(1));
  EXPECT_FALSE(s.CheckAndPush("p", 2));
  EXPECT_TRUE(s.CheckAndPush("p", 1));
}

TEST(ProducerSequencesTest, RemembersARecentWindowOfIds) {
  ProducerSequences s;
  const uint64_t n = ProducerSequences::kRememberedIds + 10;
  for (uint64_t i = 0; i < n; ++i) {
    ASSERT_FALSE(s.CheckAndPush("p", i));
    s.Persisted("p", i, MessageId{i, 1});
  }
  EXPECT_EQ(s.StoredId("p", 0), std::nullopt);  // fell out of the window: still a duplicate
  EXPECT_TRUE(s.CheckAndPush("p", 0));
  EXPECT_EQ(s.StoredId("p", n - 1), (MessageId{n - 1, 1}));
}

TEST(ProducerSequencesTest, BoundedNumberOfProducersForgetsTheLeastRecentlyUsed) {
  ProducerSequences s;
  for (size_t i = 0; i < ProducerSequences::kMaxProducers; ++i) {
    ASSERT_FALSE(s.CheckAndPush("p" + std::to_string(i), 1));
  }
  EXPECT_TRUE(s.CheckAndPush("p0", 1));  // p0 is now the most recently used
  EXPECT_FALSE(s.CheckAndPush("new", 1));
  EXPECT_EQ(s.producer_count(), ProducerSequences::kMaxProducers);
  EXPECT_EQ(s.LastSequence("p1"), std::nullopt);  // the least recently used went
  EXPECT_EQ(s.LastSequence("p0"), std::optional<uint64_t>(1));
  s.Forget("p0");
  EXPECT_EQ(s.LastSequence("p0"), std::nullopt);
}

}  // namespace
}  // namespace magnetar::core
