#include "storage/memory/memory_kv_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>

namespace magnetar::storage {
namespace {

using std::chrono::microseconds;

constexpr UnixMicros kStart = 1'700'000'000'000'000;

class MemoryKvStoreTest : public ::testing::Test {
 protected:
  std::optional<std::string> Get(const std::string& key) {
    auto result = kv_.Get(key);
    EXPECT_TRUE(result.ok());
    return result.ok() ? *result : std::nullopt;
  }
  bool PutIfAbsent(const std::string& key, const std::string& value, UnixMicros expires_at) {
    auto result = kv_.PutIfAbsent(key, value, expires_at);
    EXPECT_TRUE(result.ok());
    return result.ok() && *result;
  }

  ManualClock clock_{kStart};
  MemoryKvStore kv_{clock_};
};

TEST_F(MemoryKvStoreTest, PutIfAbsentStoresOnlyOnce) {
  EXPECT_TRUE(PutIfAbsent("idem:1", "first", 0));
  EXPECT_FALSE(PutIfAbsent("idem:1", "second", 0));
  EXPECT_EQ(Get("idem:1"), "first");
  EXPECT_TRUE(PutIfAbsent("idem:2", "other", 0));
  EXPECT_EQ(Get("idem:2"), "other");
}

TEST_F(MemoryKvStoreTest, GetMissing) { EXPECT_EQ(Get("nope"), std::nullopt); }

TEST_F(MemoryKvStoreTest, PutOverwrites) {
  ASSERT_TRUE(kv_.Put("k", "a", 0).ok());
  ASSERT_TRUE(kv_.Put("k", "b", 0).ok());
  EXPECT_EQ(Get("k"), "b");
}

TEST_F(MemoryKvStoreTest, Delete) {
  ASSERT_TRUE(kv_.Put("k", "v", 0).ok());
  ASSERT_TRUE(kv_.Delete("k").ok());
  EXPECT_EQ(Get("k"), std::nullopt);
  EXPECT_TRUE(kv_.Delete("k").ok());  // deleting a missing key is fine
  EXPECT_TRUE(PutIfAbsent("k", "again", 0));
}

TEST_F(MemoryKvStoreTest, EntriesExpire) {
  EXPECT_TRUE(PutIfAbsent("k", "v", kStart + 100));
  clock_.Advance(microseconds(99));
  EXPECT_EQ(Get("k"), "v");
  EXPECT_FALSE(PutIfAbsent("k", "w", kStart + 1'000));
  clock_.Advance(microseconds(1));  // expires_at is exclusive: gone at exactly that time
  EXPECT_EQ(Get("k"), std::nullopt);
  // An expired key counts as absent.
  EXPECT_TRUE(PutIfAbsent("k", "w", kStart + 1'000));
  EXPECT_EQ(Get("k"), "w");
}

TEST_F(MemoryKvStoreTest, ZeroMeansNeverExpires) {
  ASSERT_TRUE(kv_.Put("k", "v", 0).ok());
  clock_.Advance(microseconds(int64_t{1} << 50));
  kv_.Sweep(clock_.Now());
  EXPECT_EQ(Get("k"), "v");
}

TEST_F(MemoryKvStoreTest, SweepRemovesExpiredEntries) {
  ASSERT_TRUE(kv_.Put("short", "1", kStart + 10).ok());
  ASSERT_TRUE(kv_.Put("long", "2", kStart + 1'000).ok());
  kv_.Sweep(kStart + 10);
  // Swept entries are gone for good: even a clock moved back does not bring them back, while an
  // entry that was not swept is still there.
  clock_.Set(kStart);
  EXPECT_EQ(Get("short"), std::nullopt);
  EXPECT_EQ(Get("long"), "2");
  kv_.Sweep(kStart + 1'000);
  EXPECT_EQ(Get("long"), std::nullopt);
}

}  // namespace
}  // namespace magnetar::storage
