// The storage contract: what core/ and auth/ may rely on from any engine. Every test runs against
// every engine in AllEngines() (memory, rocksdb), each on a ManualClock so time only moves when a
// test says so.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "core/durable_subscription.h"
#include "tests/storage_contract/engines.h"

namespace magnetar::contract {
namespace {

using core::MessagePtr;
using core::ReadRequest;
using core::TopicKey;

constexpr UnixMicros kStart = 1'700'000'000'000'000;  // a whole millisecond

class StorageContractTest : public ::testing::TestWithParam<EngineKind> {
 protected:
  void SetUp() override {
    auto opened = GetParam().open(clock_, dir_.path());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    engine_ = std::move(opened).value();
  }
  void TearDown() override { engine_.reset(); }

  core::MessageStore& store() { return *engine_->messages; }

  std::vector<MessagePtr> Append(const TopicKey& topic, std::vector<core::DraftPtr> drafts) {
    auto r = AppendSync(store(), topic, std::move(drafts));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : std::vector<MessagePtr>{};
  }

  core::ReadResult Read(const TopicKey& topic, ReadRequest request = {}) {
    auto r = store().Read(topic, request);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : core::ReadResult{};
  }

  std::vector<MessageId> ReadIds(const TopicKey& topic, ReadRequest request = {}) {
    request.limit = 10'000;
    return Ids(Read(topic, request).messages);
  }

  core::TopicStats Stats(const TopicKey& topic) {
    auto r = store().Stats(topic);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : core::TopicStats{};
  }

  ManualClock clock_{kStart};
  TempDir dir_;
  std::unique_ptr<TestEngine> engine_;
  const TopicKey topic_{"owner-1", "jobs"};
};

// --- ids and appends ---

TEST_P(StorageContractTest, IdsAreTimeAndSequenceAndStrictlyIncrease) {
  const uint64_t ms = kStart / 1000;
  auto first = Append(topic_, Drafts(3));
  EXPECT_EQ(Ids(first), (std::vector<MessageId>{{ms, 0}, {ms, 1}, {ms, 2}}));
  for (const auto& m : first) EXPECT_EQ(m->publish_time, kStart);
  clock_.Advance(std::chrono::milliseconds(5));
  EXPECT_EQ(Append(topic_, Drafts(1)).front()->id, (MessageId{ms + 5, 0}));
  // The clock stepping back never makes an id go back.
  clock_.Set(kStart - 60'000'000);
  EXPECT_EQ(Append(topic_, Drafts(1)).front()->id, (MessageId{ms + 5, 1}));
  EXPECT_EQ(Stats(topic_).last_id, (MessageId{ms + 5, 1}));
}

TEST_P(StorageContractTest, TopicsHaveTheirOwnIdsAndLogs) {
  const TopicKey other_owner{"owner-2", "jobs"};
  const TopicKey other_name{"owner-1", "jobs2"};
  Append(topic_, Drafts(2, "a"));
  Append(other_owner, Drafts(1, "b"));
  Append(other_name, Drafts(1, "c"));
  const uint64_t ms = kStart / 1000;
  EXPECT_EQ(ReadIds(other_owner), (std::vector<MessageId>{{ms, 0}}));
  EXPECT_EQ(Payloads(Read(topic_).messages), (std::vector<std::string>{"a0", "a1"}));
  EXPECT_EQ(Payloads(Read(other_name).messages), (std::vector<std::string>{"c0"}));
}

TEST_P(StorageContractTest, StoredMessagesKeepEveryField) {
  auto d = Draft("{\"x\":1}", kStart + 60'000'000);
  d->format = core::PayloadFormat::kBinary;
  d->properties = {{"b", "2"}, {"a", "1"}};
  d->key = "k";
  d->producer_name = "producer";
  d->sequence_id = 7;
  d->payload = std::string("bin\0ary", 7);
  auto stored = Append(topic_, {d});
  auto read = Read(topic_).messages;
  ASSERT_EQ(read.size(), 1u);
  const core::Message& m = *read.front();
  EXPECT_EQ(m.id, stored.front()->id);
  EXPECT_EQ(m.publish_time, kStart);
  EXPECT_EQ(m.expires_at, kStart + 60'000'000);
  EXPECT_EQ(m.payload, std::string("bin\0ary", 7));
  EXPECT_EQ(m.format, core::PayloadFormat::kBinary);
  EXPECT_EQ(m.properties, d->properties);
  EXPECT_EQ(m.key, "k");
  EXPECT_EQ(m.producer_name, "producer");
  EXPECT_EQ(m.sequence_id, 7u);
}

TEST_P(StorageContractTest, EmptyAppendSucceeds) {
  auto r = AppendSync(store(), topic_, {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST_P(StorageContractTest, CallbacksComeInAppendOrderPerTopic) {
  constexpr int kAppends = 200;
  std::mutex mutex;
  std::vector<int> order;
  std::vector<MessageId> ids;
  std::promise<void> all_done;
  std::atomic<int> remaining{kAppends};
  for (int i = 0; i < kAppends; ++i) {
    store().Append(topic_, Drafts(1 + i % 3), [&, i](Result<std::vector<MessagePtr>> r) {
      ASSERT_TRUE(r.ok());
      {
        std::lock_guard lock(mutex);
        order.push_back(i);
        for (const auto& m : *r) ids.push_back(m->id);
      }
      if (--remaining == 0) all_done.set_value();
    });
  }
  all_done.get_future().wait();
  for (int i = 0; i < kAppends; ++i) EXPECT_EQ(order[i], i);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());
  EXPECT_EQ(ReadIds(topic_), ids);
}

// --- reads ---

TEST_P(StorageContractTest, ReadsHonourBoundsLimitOrderAndHasMore) {
  auto ids = Ids(Append(topic_, Drafts(10)));
  auto page = Read(topic_, {.after = ids[2], .limit = 3});
  EXPECT_EQ(Ids(page.messages), (std::vector<MessageId>{ids[3], ids[4], ids[5]}));
  EXPECT_TRUE(page.has_more);

  page = Read(topic_, {.after = ids[6], .limit = 3});
  EXPECT_EQ(Ids(page.messages), (std::vector<MessageId>{ids[7], ids[8], ids[9]}));
  EXPECT_FALSE(page.has_more);

  page = Read(topic_, {.after = ids[1], .before = ids[4], .limit = 10});
  EXPECT_EQ(Ids(page.messages), (std::vector<MessageId>{ids[2], ids[3]}));
  EXPECT_FALSE(page.has_more);

  page = Read(topic_, {.before = ids[5], .limit = 2, .descending = true});
  EXPECT_EQ(Ids(page.messages), (std::vector<MessageId>{ids[4], ids[3]}));
  EXPECT_TRUE(page.has_more);

  page = Read(topic_, {.limit = 100, .descending = true});
  ASSERT_EQ(page.messages.size(), 10u);
  EXPECT_EQ(page.messages.front()->id, ids[9]);
  EXPECT_EQ(page.messages.back()->id, ids[0]);

  page = Read(topic_, {.after = ids[1], .before = ids[2], .limit = 10});
  EXPECT_TRUE(page.messages.empty());
  page = Read(topic_, {.after = ids[9], .limit = 10});
  EXPECT_TRUE(page.messages.empty());
  EXPECT_FALSE(page.has_more);
  page = Read(topic_, {.limit = 0});
  EXPECT_TRUE(page.messages.empty());
  page = Read(topic_, {.after = MessageId::Max(), .limit = 10});
  EXPECT_TRUE(page.messages.empty());

  // A cursor between ids (never assigned) works too.
  page = Read(topic_, {.after = {ids[4].hi, ids[4].lo}, .limit = 1});
  EXPECT_EQ(Ids(page.messages), (std::vector<MessageId>{ids[5]}));
}

TEST_P(StorageContractTest, UnknownTopicReadsEmpty) {
  auto page = Read({"nobody", "nothing"}, {.limit = 10});
  EXPECT_TRUE(page.messages.empty());
  EXPECT_FALSE(page.has_more);
  auto stats = Stats({"nobody", "nothing"});
  EXPECT_EQ(stats.message_count, 0u);
  EXPECT_EQ(stats.last_id, MessageId::Min());
}

TEST_P(StorageContractTest, ReadsSkipExpiredMessagesAndHasMoreCountsOnlyLiveOnes) {
  Append(topic_, {Draft("a"), Draft("short", kStart + 1000), Draft("b")});
  Append(topic_, {Draft("late-short", kStart + 1000)});
  clock_.Advance(std::chrono::milliseconds(1));
  auto page = Read(topic_, {.limit = 2});
  EXPECT_EQ(Payloads(page.messages), (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(page.has_more);  // the only message after "b" has expired
}

// --- retention, TTL, delete ---

TEST_P(StorageContractTest, StatsCountBytesAndIds) {
  auto stored = Append(topic_, Drafts(4));
  auto stats = Stats(topic_);
  EXPECT_EQ(stats.message_count, 4u);
  uint64_t bytes = 0;
  for (const auto& m : stored) bytes += m->ByteSize();
  EXPECT_EQ(stats.byte_count, bytes);
  EXPECT_EQ(stats.first_id, stored.front()->id);
  EXPECT_EQ(stats.last_id, stored.back()->id);
}

TEST_P(StorageContractTest, RetentionByCountKeepsTheNewestAndACursorAfterATrimmedIdStillWorks) {
  store().SetRetention(topic_, {.max_messages = 5});
  auto ids = Ids(Append(topic_, Drafts(4)));
  auto more = Ids(Append(topic_, Drafts(6, "n")));
  ids.insert(ids.end(), more.begin(), more.end());
  EXPECT_EQ(ReadIds(topic_), std::vector<MessageId>(ids.begin() + 5, ids.end()));
  auto stats = Stats(topic_);
  EXPECT_EQ(stats.message_count, 5u);
  EXPECT_EQ(stats.first_id, ids[5]);
  EXPECT_EQ(stats.last_id, ids[9]);
  // "after" a trimmed id: everything retained after it.
  auto page = Read(topic_, {.after = ids[1], .limit = 2});
  EXPECT_EQ(Ids(page.messages), (std::vector<MessageId>{ids[5], ids[6]}));
  EXPECT_TRUE(page.has_more);
  // One append larger than the limit keeps its newest messages.
  auto big = Ids(Append(topic_, Drafts(7, "big")));
  EXPECT_EQ(ReadIds(topic_), std::vector<MessageId>(big.begin() + 2, big.end()));
}

TEST_P(StorageContractTest, DefaultRetentionAppliesToTopicsWithoutTheirOwn) {
  store().SetDefaultRetention({.max_messages = 3});
  auto ids = Ids(Append(topic_, Drafts(5)));
  EXPECT_EQ(ReadIds(topic_), std::vector<MessageId>(ids.begin() + 2, ids.end()));
  const TopicKey own{"owner-1", "own"};
  store().SetRetention(own, {.max_messages = 10});
  Append(own, Drafts(5));
  EXPECT_EQ(Stats(own).message_count, 5u);
}

TEST_P(StorageContractTest, RetentionByBytes) {
  // Each message counts 11 bytes (its payload; the drafts name no topic, key or properties).
  store().SetRetention(topic_, {.max_bytes = 30});
  auto ids = Ids(Append(topic_, Drafts(5, "payload-0-")));
  EXPECT_EQ(ReadIds(topic_), std::vector<MessageId>(ids.begin() + 3, ids.end()));
  EXPECT_LE(Stats(topic_).byte_count, 30u);
}

TEST_P(StorageContractTest, LoweringRetentionTrimsAtOnce) {
  auto ids = Ids(Append(topic_, Drafts(100)));
  store().SetRetention(topic_, {.max_messages = 10});
  EXPECT_EQ(ReadIds(topic_), std::vector<MessageId>(ids.begin() + 90, ids.end()));
  EXPECT_EQ(Stats(topic_).message_count, 10u);
  EXPECT_EQ(Stats(topic_).first_id, ids[90]);
}

TEST_P(StorageContractTest, RetentionByAgeDropsOldMessages) {
  store().SetRetention(topic_, {.max_age_micros = 10'000'000});
  auto old_ids = Ids(Append(topic_, Drafts(3, "old")));
  clock_.Advance(std::chrono::seconds(6));
  auto new_ids = Ids(Append(topic_, Drafts(2, "new")));
  clock_.Advance(std::chrono::seconds(5));
  store().Sweep(clock_.Now());
  EXPECT_EQ(ReadIds(topic_), new_ids);
  auto stats = Stats(topic_);
  EXPECT_EQ(stats.message_count, 2u);
  EXPECT_EQ(stats.first_id, new_ids.front());
  EXPECT_EQ(stats.last_id, new_ids.back());
  clock_.Advance(std::chrono::seconds(10));
  store().Sweep(clock_.Now());
  EXPECT_EQ(Stats(topic_).message_count, 0u);
  EXPECT_EQ(Stats(topic_).last_id, new_ids.back());
}

TEST_P(StorageContractTest, TtlExpiresMessagesAnywhereInTheLog) {
  auto stored = Append(topic_, {Draft("keep-0"), Draft("ttl-1", kStart + 1'000'000),
                                Draft("keep-2"), Draft("ttl-3", kStart + 2'000'000)});
  Append(topic_, {Draft("ttl-first", kStart + 500'000)});  // expires before the others
  EXPECT_EQ(Stats(topic_).message_count, 5u);
  clock_.Advance(std::chrono::milliseconds(1500));
  EXPECT_EQ(Payloads(Read(topic_).messages),
            (std::vector<std::string>{"keep-0", "keep-2", "ttl-3"}));
  store().Sweep(clock_.Now());
  EXPECT_EQ(Stats(topic_).message_count, 3u);
  clock_.Advance(std::chrono::seconds(1));
  store().Sweep(clock_.Now());
  auto stats = Stats(topic_);
  EXPECT_EQ(stats.message_count, 2u);
  EXPECT_EQ(stats.byte_count, stored[0]->ByteSize() + stored[2]->ByteSize());
  EXPECT_EQ(Payloads(Read(topic_).messages), (std::vector<std::string>{"keep-0", "keep-2"}));
}

TEST_P(StorageContractTest, TtlOfTheOldestMessageMovesFirstId) {
  auto stored = Append(topic_, {Draft("ttl", kStart + 1000), Draft("keep")});
  clock_.Advance(std::chrono::milliseconds(2));
  store().Sweep(clock_.Now());
  auto stats = Stats(topic_);
  EXPECT_EQ(stats.message_count, 1u);
  EXPECT_EQ(stats.first_id, stored[1]->id);
}

TEST_P(StorageContractTest, DeleteTopicRemovesMessagesButIdsKeepIncreasing) {
  auto ids = Ids(Append(topic_, Drafts(5)));
  store().SetRetention(topic_, {.max_messages = 3});
  ASSERT_TRUE(store().DeleteTopic(topic_).ok());
  EXPECT_TRUE(ReadIds(topic_).empty());
  auto stats = Stats(topic_);
  EXPECT_EQ(stats.message_count, 0u);
  EXPECT_EQ(stats.byte_count, 0u);
  EXPECT_EQ(stats.last_id, ids.back());
  // Re-created: ids continue, and the deleted topic's retention is gone.
  auto again = Ids(Append(topic_, Drafts(5)));
  EXPECT_GT(again.front(), ids.back());
  EXPECT_EQ(ReadIds(topic_), again);
  EXPECT_TRUE(store().DeleteTopic({"nobody", "nothing"}).ok());
}

TEST_P(StorageContractTest, HealthIsOk) { EXPECT_TRUE(store().Health().ok()); }

// --- topic catalog ---

core::TopicRecord Record(const std::string& owner, const std::string& name) {
  core::TopicRecord r;
  r.topic_id = "id-" + owner + "-" + name;
  r.owner_id = owner;
  r.name = name;
  r.created_at = kStart;
  return r;
}

TEST_P(StorageContractTest, TopicCatalog) {
  auto& topics = *engine_->topics;
  ASSERT_TRUE(topics.Create(Record("alice", "b")).ok());
  ASSERT_TRUE(topics.Create(Record("alice", "a")).ok());
  ASSERT_TRUE(topics.Create(Record("alice2", "c")).ok());
  ASSERT_TRUE(topics.Create(Record("bob", "a")).ok());
  EXPECT_EQ(topics.Create(Record("alice", "a")).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(*topics.Count(), 4u);

  auto got = topics.Get({"alice", "a"});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->topic_id, "id-alice-a");
  EXPECT_EQ(got->owner_id, "alice");
  EXPECT_EQ(got->name, "a");
  EXPECT_EQ(got->created_at, kStart);
  EXPECT_FALSE(got->description);
  EXPECT_EQ(topics.Get({"alice", "zzz"}).status().code(), StatusCode::kNotFound);

  auto listed = topics.ListByOwner("alice");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].name, "a");
  EXPECT_EQ((*listed)[1].name, "b");
  EXPECT_TRUE(topics.ListByOwner("nobody")->empty());

  auto record = *got;
  record.description = "described";
  ASSERT_TRUE(topics.Update(record).ok());
  EXPECT_EQ(topics.Get({"alice", "a"})->description, "described");
  EXPECT_EQ(topics.Update(Record("alice", "zzz")).code(), StatusCode::kNotFound);

  ASSERT_TRUE(topics.Delete({"alice", "a"}).ok());
  EXPECT_EQ(topics.Delete({"alice", "a"}).code(), StatusCode::kNotFound);
  EXPECT_EQ(topics.Get({"alice", "a"}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*topics.Count(), 3u);
  ASSERT_TRUE(topics.Create(Record("alice", "a")).ok());
}

TEST_P(StorageContractTest, TopicCatalogKeepsThePartitionCount) {
  auto& topics = *engine_->topics;
  EXPECT_EQ(topics.Get({"alice", "a"}).status().code(), StatusCode::kNotFound);
  auto partitioned = Record("alice", "p");
  partitioned.partitions = 4;
  partitioned.description = "four";
  ASSERT_TRUE(topics.Create(partitioned).ok());
  ASSERT_TRUE(topics.Create(Record("alice", "plain")).ok());
  EXPECT_EQ(topics.Get({"alice", "p"})->partitions, 4u);
  EXPECT_EQ(topics.Get({"alice", "p"})->description, "four");
  EXPECT_EQ(topics.Get({"alice", "plain"})->partitions, 0u);
  auto listed = topics.ListByOwner("alice");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].partitions, 4u);
  EXPECT_EQ((*listed)[1].partitions, 0u);
  // Pulsar only ever grows a partition count.
  auto grown = *topics.Get({"alice", "p"});
  grown.partitions = 7;
  ASSERT_TRUE(topics.Update(grown).ok());
  EXPECT_EQ(topics.Get({"alice", "p"})->partitions, 7u);
  auto plain = *topics.Get({"alice", "plain"});
  plain.partitions = 2;
  ASSERT_TRUE(topics.Update(plain).ok());
  EXPECT_EQ(topics.Get({"alice", "plain"})->partitions, 2u);
}

// --- kv ---

TEST_P(StorageContractTest, KvPutIfAbsentGetDeleteAndExpiry) {
  auto& kv = *engine_->kv;
  EXPECT_TRUE(*kv.PutIfAbsent("idem:1", "first", kStart + 1'000'000));
  EXPECT_FALSE(*kv.PutIfAbsent("idem:1", "second", kStart + 1'000'000));
  EXPECT_EQ(**kv.Get("idem:1"), "first");
  EXPECT_FALSE(kv.Get("absent")->has_value());

  ASSERT_TRUE(kv.Put("deny:x", "logout", 0).ok());  // never expires
  ASSERT_TRUE(kv.Put("idem:1", "replaced", kStart + 2'000'000).ok());
  EXPECT_EQ(**kv.Get("idem:1"), "replaced");

  clock_.Advance(std::chrono::seconds(2));
  EXPECT_FALSE(kv.Get("idem:1")->has_value());
  EXPECT_TRUE(*kv.PutIfAbsent("idem:1", "after-expiry", kStart + 10'000'000));
  EXPECT_EQ(**kv.Get("idem:1"), "after-expiry");

  ASSERT_TRUE(kv.Put("short", "v", kStart + 2'500'000).ok());
  clock_.Advance(std::chrono::seconds(1));
  kv.Sweep(clock_.Now());
  EXPECT_FALSE(kv.Get("short")->has_value());
  EXPECT_EQ(**kv.Get("deny:x"), "logout");
  EXPECT_EQ(**kv.Get("idem:1"), "after-expiry");

  ASSERT_TRUE(kv.Delete("deny:x").ok());
  EXPECT_FALSE(kv.Get("deny:x")->has_value());
  EXPECT_TRUE(kv.Delete("never-there").ok());
}

TEST_P(StorageContractTest, KvCompareAndSetReplacesOnlyTheExpectedLiveValue) {
  auto& kv = *engine_->kv;
  EXPECT_FALSE(*kv.CompareAndSet("dev:1", "", "x", 0));  // absent: nothing to compare with
  EXPECT_FALSE(kv.Get("dev:1")->has_value());

  ASSERT_TRUE(kv.Put("dev:1", "pending", kStart + 2'000'000).ok());
  EXPECT_FALSE(*kv.CompareAndSet("dev:1", "approved", "consumed", 0));
  EXPECT_EQ(**kv.Get("dev:1"), "pending");
  EXPECT_TRUE(*kv.CompareAndSet("dev:1", "pending", "approved", kStart + 5'000'000));
  EXPECT_EQ(**kv.Get("dev:1"), "approved");
  EXPECT_FALSE(*kv.CompareAndSet("dev:1", "pending", "denied", kStart + 5'000'000));

  // The new expiry applies: still there after the old one, gone after the new one.
  clock_.Advance(std::chrono::seconds(3));
  EXPECT_EQ(**kv.Get("dev:1"), "approved");
  clock_.Advance(std::chrono::seconds(3));
  EXPECT_FALSE(*kv.CompareAndSet("dev:1", "approved", "consumed", 0));  // expired
  EXPECT_FALSE(kv.Get("dev:1")->has_value());
}

TEST_P(StorageContractTest, KvCompareAndSetHasOneWinnerPerValue) {
  // Threads race to advance a counter by CAS: every transition from one value happens once, so
  // the final value equals the number of successful calls.
  auto& kv = *engine_->kv;
  ASSERT_TRUE(kv.Put("counter", "0", 0).ok());
  constexpr int kThreads = 4, kRounds = 50;
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kRounds; ++i) {
        auto current = kv.Get("counter");
        if (!current.ok() || !current->has_value()) continue;
        const std::string next = std::to_string(std::stoi(**current) + 1);
        auto swapped = kv.CompareAndSet("counter", **current, next, 0);
        if (swapped.ok() && *swapped) ++wins;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_GT(wins.load(), 0);
  EXPECT_EQ(**kv.Get("counter"), std::to_string(wins.load()));
}

// --- users ---

auth::User MakeUser(const std::string& id, const std::string& name, UnixMicros created) {
  auth::User u;
  u.user_id = id;
  u.username = name;
  u.email = name + "@example.org";
  u.password_hash = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA";
  u.created_at = created;
  u.permissions = {"read", "write"};
  return u;
}

TEST_P(StorageContractTest, UserStore) {
  auto& users = *engine_->users;
  ASSERT_TRUE(users.Create(MakeUser("id-b", "bob", kStart + 2)).ok());
  ASSERT_TRUE(users.Create(MakeUser("id-a", "alice", kStart + 1)).ok());
  ASSERT_TRUE(users.Create(MakeUser("id-c", "carol", kStart + 1)).ok());
  Status dup = users.Create(MakeUser("id-x", "alice", kStart));
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.message(), "Username 'alice' already exists");
  EXPECT_EQ(users.Create(MakeUser("id-a", "other", kStart)).code(), StatusCode::kAlreadyExists);

  auto alice = users.GetByUsername("alice");
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(alice->user_id, "id-a");
  EXPECT_EQ(alice->password_hash, MakeUser("", "", 0).password_hash);
  EXPECT_EQ(alice->permissions, (std::vector<std::string>{"read", "write"}));
  EXPECT_EQ(users.GetById("id-b")->username, "bob");
  EXPECT_EQ(users.GetByUsername("Alice").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(users.GetById("nope").status().message(), "User with ID 'nope' not found");

  auto all = users.List();
  ASSERT_TRUE(all.ok());
  std::vector<std::string> order;
  for (const auto& u : *all) order.push_back(u.user_id);
  EXPECT_EQ(order, (std::vector<std::string>{"id-a", "id-c", "id-b"}));

  auth::User changed = *alice;
  changed.username = "renamed";
  changed.is_active = false;
  changed.email.reset();
  changed.permissions = {"admin"};
  ASSERT_TRUE(users.Update(changed).ok());
  auto updated = users.GetById("id-a");
  EXPECT_EQ(updated->username, "alice");
  EXPECT_FALSE(updated->is_active);
  EXPECT_FALSE(updated->email);
  EXPECT_EQ(updated->permissions, (std::vector<std::string>{"admin"}));
  EXPECT_EQ(users.GetByUsername("renamed").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(users.Update(MakeUser("nope", "x", 0)).code(), StatusCode::kNotFound);

  ASSERT_TRUE(users.Delete("id-a").ok());
  EXPECT_EQ(users.Delete("id-a").code(), StatusCode::kNotFound);
  EXPECT_EQ(users.GetByUsername("alice").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(users.Create(MakeUser("id-a2", "alice", kStart)).ok());  // the name is free again
}

// --- cursors ---

TEST_P(StorageContractTest, CursorStore) {
  auto& cursors = *engine_->cursors;
  EXPECT_EQ(cursors.Load(topic_, "sub").status().code(), StatusCode::kNotFound);
  core::CursorState state{{10, 2}, {{10, 4}, {11, 0}}};
  ASSERT_TRUE(cursors.Save(topic_, "sub", state).ok());
  ASSERT_TRUE(cursors.Save(topic_, "other", core::CursorState{}).ok());
  EXPECT_EQ(*cursors.Load(topic_, "sub"), state);
  EXPECT_EQ(*cursors.Load(topic_, "other"), core::CursorState{});
  EXPECT_EQ(cursors.Load({"owner-2", "jobs"}, "sub").status().code(), StatusCode::kNotFound);

  state.mark_delete = {11, 0};
  state.individually_acked.clear();
  ASSERT_TRUE(cursors.Save(topic_, "sub", state).ok());
  EXPECT_EQ(*cursors.Load(topic_, "sub"), state);
  ASSERT_TRUE(cursors.Delete(topic_, "sub").ok());
  EXPECT_EQ(cursors.Load(topic_, "sub").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(cursors.Delete(topic_, "sub").ok());
}

TEST_P(StorageContractTest, DurableSubscriptionResumesFromASavedCursor) {
  auto ids = Ids(Append(topic_, Drafts(5)));
  {
    core::DurableSubscription sub(store(), topic_, "sub", {});
    auto got = sub.Next(3, clock_.Now());
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->size(), 3u);
    ASSERT_TRUE(sub.Ack(ids[0]).ok());
    ASSERT_TRUE(sub.Ack(ids[2]).ok());
    ASSERT_TRUE(engine_->cursors->Save(topic_, "sub", sub.Snapshot()).ok());
  }
  auto saved = engine_->cursors->Load(topic_, "sub");
  ASSERT_TRUE(saved.ok());
  core::DurableSubscription again(store(), topic_, "sub", *saved);
  auto got = again.Next(10, clock_.Now());
  ASSERT_TRUE(got.ok());
  std::vector<MessageId> redelivered;
  for (const auto& d : *got) redelivered.push_back(d.message->id);
  EXPECT_EQ(redelivered, (std::vector<MessageId>{ids[1], ids[3], ids[4]}));
}

INSTANTIATE_TEST_SUITE_P(Engines, StorageContractTest, ::testing::ValuesIn(AllEngines()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace magnetar::contract
