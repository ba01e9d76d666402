#include "storage/memory/memory_message_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/clock.h"

namespace magnetar::storage {
namespace {

using core::DraftPtr;
using core::MessagePtr;
using core::ReadRequest;
using core::RetentionPolicy;
using core::TopicKey;
using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr UnixMicros kStart = 1'700'000'000'000'000;
constexpr uint64_t kStartMs = kStart / 1000;

DraftPtr Draft(std::string payload, UnixMicros expires_at = 0) {
  auto draft = std::make_shared<core::Message>();
  draft->topic = "jobs";
  draft->payload = std::move(payload);
  draft->expires_at = expires_at;
  return draft;
}

std::vector<MessageId> Ids(const std::vector<MessagePtr>& messages) {
  std::vector<MessageId> ids;
  for (const auto& m : messages) ids.push_back(m->id);
  return ids;
}

class MemoryMessageStoreTest : public ::testing::Test {
 protected:
  // Appends one message per payload, in one call; returns the stored messages.
  std::vector<MessagePtr> Append(std::vector<std::string> payloads, const TopicKey* topic = nullptr,
                                 UnixMicros expires_at = 0) {
    std::vector<DraftPtr> drafts;
    for (auto& p : payloads) drafts.push_back(Draft(std::move(p), expires_at));
    std::vector<MessagePtr> stored;
    int calls = 0;
    store_.Append(topic ? *topic : topic_, std::move(drafts),
                  [&](Result<std::vector<MessagePtr>> result) {
                    ++calls;
                    ASSERT_TRUE(result.ok()) << result.status().ToString();
                    stored = *result;
                  });
    EXPECT_EQ(calls, 1);  // the memory engine completes inline, exactly once
    return stored;
  }
  MessageId AppendOne(std::string payload = "x", UnixMicros expires_at = 0) {
    auto stored = Append({std::move(payload)}, nullptr, expires_at);
    return stored.empty() ? MessageId() : stored.front()->id;
  }

  core::ReadResult Read(ReadRequest request) {
    auto result = store_.Read(topic_, request);
    EXPECT_TRUE(result.ok());
    return result.ok() ? *result : core::ReadResult{};
  }
  std::vector<MessageId> ReadIds(ReadRequest request) { return Ids(Read(request).messages); }
  std::vector<MessageId> ReadAll() {
    ReadRequest request;
    request.limit = 1'000'000;
    return ReadIds(request);
  }
  core::TopicStats Stats() {
    auto stats = store_.Stats(topic_);
    EXPECT_TRUE(stats.ok());
    return stats.ok() ? *stats : core::TopicStats{};
  }

  ManualClock clock_{kStart};
  MemoryMessageStore store_{clock_};
  TopicKey topic_{"owner-1", "jobs"};
};

TEST_F(MemoryMessageStoreTest, IdsAreMillisecondsThenSequence) {
  auto batch = Append({"a", "b", "c"});
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch[0]->id, (MessageId{kStartMs, 0}));
  EXPECT_EQ(batch[1]->id, (MessageId{kStartMs, 1}));
  EXPECT_EQ(batch[2]->id, (MessageId{kStartMs, 2}));
  EXPECT_EQ(batch[0]->publish_time, kStart);
  EXPECT_EQ(batch[0]->payload, "a");

  EXPECT_EQ(AppendOne(), (MessageId{kStartMs, 3}));  // same millisecond
  clock_.Advance(microseconds(999));                  // still the same millisecond
  EXPECT_EQ(AppendOne(), (MessageId{kStartMs, 4}));
  clock_.Advance(microseconds(1));
  EXPECT_EQ(AppendOne(), (MessageId{kStartMs + 1, 0}));
  clock_.Advance(milliseconds(5));
  EXPECT_EQ(AppendOne(), (MessageId{kStartMs + 6, 0}));
}

TEST_F(MemoryMessageStoreTest, IdsIncreaseEvenWhenTheClockGoesBack) {
  clock_.Advance(milliseconds(10));
  const MessageId first = AppendOne();
  clock_.Set(kStart);
  const MessageId second = AppendOne();
  EXPECT_GT(second, first);
  EXPECT_EQ(second, (MessageId{first.hi, first.lo + 1}));
}

TEST_F(MemoryMessageStoreTest, TopicsAreIndependent) {
  TopicKey other{"owner-2", "jobs"};
  AppendOne();
  AppendOne();
  auto stored = Append({"z"}, &other);
  EXPECT_EQ(stored.front()->id, (MessageId{kStartMs, 0}));
  EXPECT_EQ(ReadAll().size(), 2u);
}

TEST_F(MemoryMessageStoreTest, ReadRangesLimitsAndDirection) {
  std::vector<MessageId> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(AppendOne("m" + std::to_string(i)));
    clock_.Advance(milliseconds(1));
  }
  EXPECT_EQ(ReadAll(), ids);

  ReadRequest r;
  r.after = ids[1];
  EXPECT_EQ(ReadIds(r), (std::vector<MessageId>{ids[2], ids[3], ids[4]}));
  r.before = ids[4];
  EXPECT_EQ(ReadIds(r), (std::vector<MessageId>{ids[2], ids[3]}));

  ReadRequest limited;
  limited.limit = 2;
  auto page = Read(limited);
  EXPECT_EQ(Ids(page.messages), (std::vector<MessageId>{ids[0], ids[1]}));
  EXPECT_TRUE(page.has_more);
  limited.after = ids[2];
  page = Read(limited);
  EXPECT_EQ(Ids(page.messages), (std::vector<MessageId>{ids[3], ids[4]}));
  EXPECT_FALSE(page.has_more);  // exactly the rest: nothing more

  ReadRequest descending;
  descending.descending = true;
  descending.limit = 2;
  page = Read(descending);
  EXPECT_EQ(Ids(page.messages), (std::vector<MessageId>{ids[4], ids[3]}));
  EXPECT_TRUE(page.has_more);
  descending.before = ids[3];
  page = Read(descending);
  EXPECT_EQ(Ids(page.messages), (std::vector<MessageId>{ids[2], ids[1]}));
  EXPECT_TRUE(page.has_more);
  descending.before = ids[1];
  page = Read(descending);
  EXPECT_EQ(Ids(page.messages), (std::vector<MessageId>{ids[0]}));
  EXPECT_FALSE(page.has_more);

  // Bounds that fall between ids, and empty ranges.
  ReadRequest between;
  between.after = {ids[1].hi, ids[1].lo + 7};
  between.before = {ids[3].hi, ids[3].lo + 1};
  EXPECT_EQ(ReadIds(between), (std::vector<MessageId>{ids[2], ids[3]}));
  ReadRequest empty;
  empty.after = ids[2];
  empty.before = ids[3];
  EXPECT_TRUE(ReadIds(empty).empty());
  empty.before = ids[0];  // before < after
  EXPECT_TRUE(ReadIds(empty).empty());
  empty.after = ids[4];
  empty.before = MessageId::Max();
  auto tail = Read(empty);
  EXPECT_TRUE(tail.messages.empty());
  EXPECT_FALSE(tail.has_more);
}

TEST_F(MemoryMessageStoreTest, UnknownTopicReadsAsEmpty) {
  auto result = store_.Read(TopicKey{"nobody", "nothing"}, ReadRequest{});
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->messages.empty());
  EXPECT_FALSE(result->has_more);
  auto stats = store_.Stats(TopicKey{"nobody", "nothing"});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->message_count, 0u);
  EXPECT_EQ(stats->last_id, MessageId::Min());
  EXPECT_TRUE(store_.DeleteTopic(TopicKey{"nobody", "nothing"}).ok());
}

TEST_F(MemoryMessageStoreTest, CursorResumesAfterItsMessageWasTrimmed) {
  std::vector<MessageId> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(AppendOne());
    clock_.Advance(milliseconds(1));
  }
  store_.SetRetention(topic_, RetentionPolicy{.max_messages = 3});
  EXPECT_EQ(ReadAll(), (std::vector<MessageId>{ids[2], ids[3], ids[4]}));
  ReadRequest r;
  r.after = ids[1];  // trimmed
  EXPECT_EQ(ReadIds(r), (std::vector<MessageId>{ids[2], ids[3], ids[4]}));
  r.after = ids[0];
  EXPECT_EQ(ReadIds(r), (std::vector<MessageId>{ids[2], ids[3], ids[4]}));
  ReadRequest desc;
  desc.descending = true;
  desc.before = ids[1];
  EXPECT_TRUE(ReadIds(desc).empty());
}

TEST_F(MemoryMessageStoreTest, RetentionByCountOnAppend) {
  store_.SetRetention(topic_, RetentionPolicy{.max_messages = 2});
  auto batch = Append({"a", "b", "c", "d"});
  EXPECT_EQ(ReadAll(), (std::vector<MessageId>{batch[2]->id, batch[3]->id}));
  const MessageId e = AppendOne("e");
  EXPECT_EQ(ReadAll(), (std::vector<MessageId>{batch[3]->id, e}));
  EXPECT_EQ(Stats().message_count, 2u);
  EXPECT_EQ(Stats().byte_count, batch[3]->ByteSize() + 5 /* "e" + "jobs" */);
}

TEST_F(MemoryMessageStoreTest, RetentionByBytes) {
  // Each message is 4 (topic "jobs") + 6 (payload) = 10 bytes.
  store_.SetRetention(topic_, RetentionPolicy{.max_bytes = 25});
  auto batch = Append({"aaaaaa", "bbbbbb"});
  EXPECT_EQ(Stats().byte_count, 20u);
  const MessageId c = AppendOne("cccccc");
  EXPECT_EQ(ReadAll(), (std::vector<MessageId>{batch[1]->id, c}));
  EXPECT_EQ(Stats().byte_count, 20u);
  EXPECT_EQ(Stats().first_id, batch[1]->id);
}

TEST_F(MemoryMessageStoreTest, DefaultRetentionAppliesToTopicsWithoutTheirOwn) {
  store_.SetDefaultRetention(RetentionPolicy{.max_messages = 1});
  TopicKey own{"owner-1", "own"};
  store_.SetRetention(own, RetentionPolicy{.max_messages = 3});
  Append({"a", "b", "c"});
  Append({"a", "b", "c"}, &own);
  EXPECT_EQ(ReadAll().size(), 1u);
  EXPECT_EQ(store_.Stats(own)->message_count, 3u);
}

TEST_F(MemoryMessageStoreTest, RetentionByAge) {
  store_.SetRetention(topic_, RetentionPolicy{.max_age_micros = 10'000});
  const MessageId old_id = AppendOne("old");
  clock_.Advance(microseconds(6'000));
  const MessageId young = AppendOne("young");
  clock_.Advance(microseconds(4'000));  // "old" is now exactly 10 ms old
  store_.Sweep(clock_.Now());
  EXPECT_EQ(ReadAll(), (std::vector<MessageId>{young}));
  EXPECT_EQ(Stats().byte_count, 9u);  // "young" + "jobs"
  EXPECT_GT(young, old_id);
  clock_.Advance(microseconds(6'000));
  const MessageId newest = AppendOne("n");  // the append enforces age as well
  EXPECT_EQ(ReadAll(), (std::vector<MessageId>{newest}));
}

TEST_F(MemoryMessageStoreTest, ExpiredMessagesAreNotReadAndSweepRemovesThem) {
  const MessageId a = AppendOne("a");
  const MessageId b = AppendOne("b", kStart + 1'000);  // TTL 1 ms, in the middle
  const MessageId c = AppendOne("c", kStart + 5'000);
  const MessageId d = AppendOne("d");
  EXPECT_EQ(ReadAll(), (std::vector<MessageId>{a, b, c, d}));
  clock_.Advance(microseconds(1'000));
  EXPECT_EQ(ReadAll(), (std::vector<MessageId>{a, c, d}));
  // An expired message does not count toward the limit or has_more.
  ReadRequest page;
  page.after = a;
  page.limit = 2;
  auto result = Read(page);
  EXPECT_EQ(Ids(result.messages), (std::vector<MessageId>{c, d}));
  EXPECT_FALSE(result.has_more);

  EXPECT_EQ(Stats().byte_count, 20u);
  store_.Sweep(clock_.Now());
  EXPECT_EQ(Stats().message_count, 3u);
  EXPECT_EQ(Stats().byte_count, 15u);
  clock_.Advance(microseconds(4'000));
  store_.Sweep(clock_.Now());
  EXPECT_EQ(ReadAll(), (std::vector<MessageId>{a, d}));
  EXPECT_EQ(Stats().message_count, 2u);
  EXPECT_EQ(Stats().byte_count, 10u);
}

TEST_F(MemoryMessageStoreTest, ExpiredFrontIsDroppedOnAppend) {
  AppendOne("a", kStart + 1);
  clock_.Advance(microseconds(10));
  const MessageId b = AppendOne("b");
  EXPECT_EQ(Stats().message_count, 1u);
  EXPECT_EQ(Stats().first_id, b);
  EXPECT_EQ(Stats().byte_count, 5u);
}

TEST_F(MemoryMessageStoreTest, DeleteTopicKeepsIdsIncreasing) {
  AppendOne();
  const MessageId last = AppendOne();
  ASSERT_TRUE(store_.DeleteTopic(topic_).ok());
  EXPECT_TRUE(ReadAll().empty());
  auto stats = Stats();
  EXPECT_EQ(stats.message_count, 0u);
  EXPECT_EQ(stats.byte_count, 0u);
  EXPECT_EQ(stats.first_id, MessageId::Min());
  EXPECT_EQ(stats.last_id, last);
  const MessageId next = AppendOne();
  EXPECT_GT(next, last);
  EXPECT_EQ(ReadAll(), (std::vector<MessageId>{next}));
}

TEST_F(MemoryMessageStoreTest, Stats) {
  auto empty = Stats();
  EXPECT_EQ(empty.message_count, 0u);
  EXPECT_EQ(empty.first_id, MessageId::Min());
  EXPECT_EQ(empty.last_id, MessageId::Min());

  auto draft = Draft("payload");
  draft->key = "k";
  draft->properties = {{"ab", "cde"}};
  std::vector<DraftPtr> drafts{draft};
  store_.Append(topic_, std::move(drafts), [](Result<std::vector<MessagePtr>>) {});
  const MessageId second = AppendOne("xy");
  auto stats = Stats();
  EXPECT_EQ(stats.message_count, 2u);
  EXPECT_EQ(stats.byte_count, (7u + 1 + 4 + 5) + (2u + 4));
  EXPECT_EQ(stats.first_id, draft->id);
  EXPECT_EQ(stats.last_id, second);

  store_.SetRetention(topic_, RetentionPolicy{.max_messages = 1});
  stats = Stats();
  EXPECT_EQ(stats.message_count, 1u);
  EXPECT_EQ(stats.first_id, second);
  EXPECT_EQ(stats.last_id, second);
}

TEST_F(MemoryMessageStoreTest, EmptyAppendSucceeds) {
  auto stored = Append({});
  EXPECT_TRUE(stored.empty());
  EXPECT_TRUE(store_.Health().ok());
  EXPECT_FALSE(store_.blocking());
}

}  // namespace
}  // namespace magnetar::storage
