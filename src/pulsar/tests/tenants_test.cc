#include "pulsar/tenants.h"

#include <gtest/gtest.h>

namespace magnetar::pulsar {
namespace {

TEST(PartitionNames, NameAndIndexRoundTrip) {
  EXPECT_EQ(PartitionName("orders", 0), "orders-partition-0");
  EXPECT_EQ(PartitionName("orders", 12), "orders-partition-12");
  std::string base;
  EXPECT_EQ(PartitionIndex("orders-partition-12", &base), 12u);
  EXPECT_EQ(base, "orders");
  EXPECT_EQ(PartitionIndex("a-partition-b-partition-3", &base), 3u);
  EXPECT_EQ(base, "a-partition-b");
}

TEST(PartitionNames, OtherNamesAreNotPartitions) {
  EXPECT_FALSE(PartitionIndex("orders", nullptr));
  EXPECT_FALSE(PartitionIndex("orders-partition-", nullptr));
  EXPECT_FALSE(PartitionIndex("orders-partition-x", nullptr));
  EXPECT_FALSE(PartitionIndex("orders-partition-01", nullptr));  // Pulsar never writes this
  EXPECT_FALSE(PartitionIndex("orders-partition--1", nullptr));
  EXPECT_FALSE(PartitionIndex("-partition-1", nullptr));
  EXPECT_FALSE(PartitionIndex("orders-partition-1234567890", nullptr));
}

}  // namespace
}  // namespace magnetar::pulsar
