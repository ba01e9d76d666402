#include "core/broker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "storage/memory/memory_message_store.h"

namespace magnetar::core {
namespace {

using std::chrono::milliseconds;

// Records what the hub hands it. Thread-safe (publishers may run on several threads).
class RecordingSink final : public SubscriberSink {
 public:
  void OnMessage(const MessagePtr& message) override {
    std::lock_guard lock(mutex_);
    messages_.push_back(message);
  }
  std::vector<MessageId> ids() const {
    std::lock_guard lock(mutex_);
    std::vector<MessageId> out;
    for (const auto& m : messages_) out.push_back(m->id);
    return out;
  }
  std::vector<std::string> payloads() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& m : messages_) out.push_back(m->payload);
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<MessagePtr> messages_;
};

DraftPtr Draft(std::string payload) {
  auto draft = std::make_shared<Message>();
  draft->topic = "jobs";
  draft->payload = std::move(payload);
  return draft;
}

bool StrictlyIncreasing(const std::vector<MessageId>& ids) {
  for (size_t i = 1; i < ids.size(); ++i) {
    if (!(ids[i - 1] < ids[i])) return false;
  }
  return true;
}

class BrokerTest : public ::testing::Test {
 protected:
  std::vector<MessageId> Publish(std::vector<std::string> payloads) {
    std::vector<DraftPtr> drafts;
    for (auto& p : payloads) drafts.push_back(Draft(std::move(p)));
    std::vector<MessageId> ids;
    bool called = false;
    broker_.Publish(topic_, std::move(drafts), [&](Result<std::vector<MessagePtr>> result) {
      called = true;
      ASSERT_TRUE(result.ok()) << result.status().ToString();
      for (const auto& m : *result) ids.push_back(m->id);
    });
    EXPECT_TRUE(called);
    return ids;
  }
  MessageId PublishOne(std::string payload = "x") {
    auto ids = Publish({std::move(payload)});
    return ids.empty() ? MessageId() : ids.front();
  }
  // The stored ids in (after, upto], oldest first.
  std::vector<MessageId> StoredIds(MessageId after, MessageId upto) {
    ReadRequest request;
    request.after = after;
    request.before = upto == MessageId::Max() ? upto : MessageId{upto.hi, upto.lo + 1};
    request.limit = 1'000'000;
    auto result = store_.Read(topic_, request);
    EXPECT_TRUE(result.ok());
    std::vector<MessageId> ids;
    if (result.ok()) {
      for (const auto& m : result->messages) ids.push_back(m->id);
    }
    return ids;
  }

  ManualClock clock_;
  storage::MemoryMessageStore store_{clock_};
  Broker broker_{store_, clock_};
  TopicKey topic_{"owner-1", "jobs"};
};

TEST_F(BrokerTest, PublishAssignsIncreasingIds) {
  auto first = Publish({"a", "b", "c"});
  clock_.Advance(milliseconds(1));
  auto second = Publish({"d"});
  auto third = Publish({"e", "f"});
  std::vector<MessageId> all = first;
  all.insert(all.end(), second.begin(), second.end());
  all.insert(all.end(), third.begin(), third.end());
  ASSERT_EQ(all.size(), 6u);
  EXPECT_TRUE(StrictlyIncreasing(all));
  EXPECT_EQ(StoredIds(MessageId::Min(), MessageId::Max()), all);
}

TEST_F(BrokerTest, DoneRunsAfterFanOutAndMayPublishAgain) {
  auto sink = std::make_shared<RecordingSink>();
  broker_.Subscribe(topic_, sink);
  int first_calls = 0;
  int second_calls = 0;
  std::vector<DraftPtr> drafts{Draft("first")};
  broker_.Publish(topic_, std::move(drafts), [&](Result<std::vector<MessagePtr>> result) {
    ++first_calls;
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(sink->ids(), std::vector<MessageId>{result->front()->id});  // fanned out already
    // Publishing to the same topic from `done` must not deadlock.
    std::vector<DraftPtr> more{Draft("second")};
    broker_.Publish(topic_, std::move(more),
                    [&](Result<std::vector<MessagePtr>> r) { second_calls += r.ok() ? 1 : 100; });
  });
  EXPECT_EQ(first_calls, 1);
  EXPECT_EQ(second_calls, 1);
  EXPECT_EQ(sink->payloads(), (std::vector<std::string>{"first", "second"}));
}

TEST_F(BrokerTest, SubscribersGetMessagesInIdOrder) {
  auto a = std::make_shared<RecordingSink>();
  auto b = std::make_shared<RecordingSink>();
  EXPECT_EQ(broker_.Subscribe(topic_, a), MessageId::Min());
  EXPECT_EQ(broker_.Subscribe(topic_, b), MessageId::Min());
  EXPECT_EQ(broker_.SubscriberCount(topic_), 2u);
  std::vector<MessageId> ids;
  for (int i = 0; i < 10; ++i) {
    auto batch = Publish({"p" + std::to_string(i), "q" + std::to_string(i)});
    ids.insert(ids.end(), batch.begin(), batch.end());
    if (i % 3 == 0) clock_.Advance(milliseconds(1));
  }
  EXPECT_EQ(a->ids(), ids);
  EXPECT_EQ(b->ids(), ids);
  EXPECT_EQ(a->payloads().front(), "p0");
  EXPECT_EQ(a->payloads().back(), "q9");
}

TEST_F(BrokerTest, OtherTopicsAreNotDelivered) {
  auto sink = std::make_shared<RecordingSink>();
  broker_.Subscribe(TopicKey{"owner-2", "jobs"}, sink);
  PublishOne();
  EXPECT_TRUE(sink->ids().empty());
  EXPECT_EQ(broker_.SubscriberCount(topic_), 0u);
}

TEST_F(BrokerTest, SubscribeReturnsTheReplayBoundary) {
  auto history = Publish({"a", "b", "c"});
  auto sink = std::make_shared<RecordingSink>();
  const MessageId boundary = broker_.Subscribe(topic_, sink);
  EXPECT_EQ(boundary, history.back());
  auto live = Publish({"d", "e"});
  EXPECT_EQ(sink->ids(), live);
  EXPECT_EQ(StoredIds(MessageId::Min(), boundary), history);
}

TEST_F(BrokerTest, SubscribeSeesMessagesAppendedBeforeTheBrokerKnewTheTopic) {
  // Messages appended straight to the store (e.g. before a restart) are history, not live.
  std::vector<DraftPtr> drafts{Draft("old")};
  MessageId old_id;
  store_.Append(topic_, std::move(drafts),
                [&](Result<std::vector<MessagePtr>> r) {
                  if (r.ok() && !r->empty()) old_id = r->front()->id;
                });
  auto sink = std::make_shared<RecordingSink>();
  EXPECT_EQ(broker_.Subscribe(topic_, sink), old_id);
  const MessageId next = PublishOne();
  EXPECT_EQ(sink->ids(), std::vector<MessageId>{next});
}

TEST_F(BrokerTest, UnsubscribeStopsDelivery) {
  auto kept = std::make_shared<RecordingSink>();
  auto dropped = std::make_shared<RecordingSink>();
  broker_.Subscribe(topic_, kept);
  broker_.Subscribe(topic_, dropped);
  const MessageId first = PublishOne();
  broker_.Unsubscribe(topic_, dropped.get());
  EXPECT_EQ(broker_.SubscriberCount(topic_), 1u);
  const MessageId second = PublishOne();
  EXPECT_EQ(dropped->ids(), std::vector<MessageId>{first});
  EXPECT_EQ(kept->ids(), (std::vector<MessageId>{first, second}));
  broker_.Unsubscribe(topic_, dropped.get());  // twice: no effect
  broker_.Unsubscribe(TopicKey{"x", "y"}, kept.get());
  EXPECT_EQ(broker_.SubscriberCount(topic_), 1u);
}

TEST_F(BrokerTest, ConcurrentPublishersKeepEverySubscriberInOrder) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 300;
  auto early = std::make_shared<RecordingSink>();
  broker_.Subscribe(topic_, early);

  std::shared_ptr<RecordingSink> late;
  MessageId late_boundary;
  std::atomic<int> published{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::vector<DraftPtr> drafts{Draft(std::to_string(t) + ":" + std::to_string(i))};
        if (i % 7 == 0) drafts.push_back(Draft(std::to_string(t) + ":" + std::to_string(i) + "b"));
        broker_.Publish(topic_, std::move(drafts), [](Result<std::vector<MessagePtr>> r) {
          EXPECT_TRUE(r.ok());
        });
        published += 1;
        if (i % 50 == 0) clock_.Advance(milliseconds(1));
      }
    });
  }
  // A subscriber that joins while publishers are running.
  while (published.load() < kThreads * kPerThread / 2) std::this_thread::yield();
  late = std::make_shared<RecordingSink>();
  late_boundary = broker_.Subscribe(topic_, late);
  for (auto& thread : threads) thread.join();
  PublishOne("9:end");  // the late subscriber gets at least one live message, however timing went

  const std::vector<MessageId> all = StoredIds(MessageId::Min(), MessageId::Max());
  const size_t expected = kThreads * (kPerThread + (kPerThread + 6) / 7) + 1;
  ASSERT_EQ(all.size(), expected);
  EXPECT_TRUE(StrictlyIncreasing(all));
  EXPECT_EQ(early->ids(), all);

  // Replay up to the boundary, then live: every message exactly once, in order.
  std::vector<MessageId> joined = StoredIds(MessageId::Min(), late_boundary);
  const auto live = late->ids();
  EXPECT_TRUE(StrictlyIncreasing(live));
  joined.insert(joined.end(), live.begin(), live.end());
  EXPECT_EQ(joined, all);
  EXPECT_LT(live.size(), all.size());  // half were published before it joined

  // Each publisher's messages arrive in the order it published them.
  std::vector<int> next(kThreads, 0);
  for (const std::string& payload : early->payloads()) {
    if (payload.back() == 'b' || payload == "9:end") continue;
    const int t = payload[0] - '0';
    EXPECT_EQ(payload, std::to_string(t) + ":" + std::to_string(next[t]));
    ++next[t];
  }
}

TEST_F(BrokerTest, DeleteTopicDataDropsMessagesButIdsKeepIncreasing) {
  auto sink = std::make_shared<RecordingSink>();
  broker_.Subscribe(topic_, sink);
  auto before = Publish({"a", "b"});
  ASSERT_TRUE(broker_.DeleteTopicData(topic_).ok());
  EXPECT_TRUE(StoredIds(MessageId::Min(), MessageId::Max()).empty());
  EXPECT_EQ(broker_.SubscriberCount(topic_), 1u);  // subscribers stay attached
  const MessageId after = PublishOne("c");
  EXPECT_GT(after, before.back());
  EXPECT_EQ(StoredIds(MessageId::Min(), MessageId::Max()), std::vector<MessageId>{after});
  EXPECT_EQ(sink->ids(), (std::vector<MessageId>{before[0], before[1], after}));
  // A subscriber joining now replays nothing before `after`.
  auto late = std::make_shared<RecordingSink>();
  EXPECT_EQ(broker_.Subscribe(topic_, late), after);
  EXPECT_TRUE(broker_.DeleteTopicData(TopicKey{"nobody", "none"}).ok());
}

// A bus that records watches and lets the test deliver, as another node's appends would arrive.
class FakeBus final : public ClusterBus {
 public:
  void Watch(const TopicKey& topic, MessageId after, Delivery deliver) override {
    std::lock_guard lock(mutex);
    watched = topic.name;
    watched_after = after;
    this->deliver = std::move(deliver);
    ++watches;
  }
  void Unwatch(const TopicKey&) override {
    std::lock_guard lock(mutex);
    ++unwatches;
    deliver = nullptr;
  }
  std::mutex mutex;
  std::string watched;
  MessageId watched_after;
  Delivery deliver;
  int watches = 0, unwatches = 0;
};

TEST(BrokerWithBusTest, FanOutComesOnlyFromTheBusInItsOrderWithoutRepeats) {
  ManualClock clock;
  storage::MemoryMessageStore store{clock};
  FakeBus bus;
  Broker broker{store, clock, &bus};
  const TopicKey topic{"owner-1", "jobs"};
  auto publish = [&](const std::string& payload) {
    MessagePtr stored;
    broker.Publish(topic, {Draft(payload)}, [&](Result<std::vector<MessagePtr>> r) {
      ASSERT_TRUE(r.ok());
      stored = r->front();
    });
    return stored;
  };
  auto before = publish("before");
  auto sink = std::make_shared<RecordingSink>();
  EXPECT_EQ(broker.Subscribe(topic, sink), before->id);
  EXPECT_EQ(bus.watches, 1);
  EXPECT_EQ(bus.watched, "jobs");
  EXPECT_EQ(bus.watched_after, before->id);  // the watch starts after what the store had

  auto mine = publish("mine");
  EXPECT_TRUE(sink->ids().empty());  // not fanned out locally: the bus brings it
  // Another node's message and ours, as the bus delivers them (a repeat of `before` is dropped).
  auto other = std::make_shared<Message>();
  other->id = {mine->id.hi, mine->id.lo + 1};
  bus.deliver({before, mine});
  bus.deliver({other});
  EXPECT_EQ(sink->ids(), (std::vector<MessageId>{mine->id, other->id}));

  auto second = std::make_shared<RecordingSink>();
  EXPECT_EQ(broker.Subscribe(topic, second), other->id);
  EXPECT_EQ(bus.watches, 1);  // already watched
  broker.Unsubscribe(topic, sink.get());
  EXPECT_EQ(bus.unwatches, 0);
  broker.Unsubscribe(topic, second.get());
  EXPECT_EQ(bus.unwatches, 1);  // the last live subscriber left
}

// ---- de-duplication by producer name and sequence id -------------------------------------------

DraftPtr Sequenced(std::string payload, std::string producer, uint64_t sequence_id) {
  DraftPtr d = Draft(std::move(payload));
  d->producer_name = std::move(producer);
  d->sequence_id = sequence_id;
  return d;
}

class BrokerDedupeTest : public BrokerTest {
 protected:
  std::vector<MessagePtr> Send(std::vector<DraftPtr> drafts) {
    std::vector<MessagePtr> out;
    broker_.Publish(topic_, std::move(drafts), [&](Result<std::vector<MessagePtr>> result) {
      ASSERT_TRUE(result.ok()) << result.status().ToString();
      out = *result;
    });
    return out;
  }
};

TEST_F(BrokerDedupeTest, ResentSequenceIsAnsweredWithTheOriginalIdAndNotStored) {
  auto sink = std::make_shared<RecordingSink>();
  broker_.Subscribe(topic_, sink);
  auto first = Send({Sequenced("a", "p1", 1), Sequenced("b", "p1", 2)});
  ASSERT_EQ(first.size(), 2u);
  EXPECT_FALSE(first[0]->duplicate);
  EXPECT_EQ(broker_.LastSequence(topic_, "p1"), std::optional<uint64_t>(2));

  // A batch re-sent in part: the duplicate keeps its place, the new message is stored.
  auto again = Send({Sequenced("b", "p1", 2), Sequenced("c", "p1", 3)});
  ASSERT_EQ(again.size(), 2u);
  EXPECT_TRUE(again[0]->duplicate);
  EXPECT_EQ(again[0]->id, first[1]->id);
  EXPECT_FALSE(again[1]->duplicate);
  // Lower than the mark is a duplicate too; all duplicates: nothing stored, done still called.
  auto old = Send({Sequenced("a", "p1", 1)});
  ASSERT_EQ(old.size(), 1u);
  EXPECT_TRUE(old[0]->duplicate);
  EXPECT_EQ(old[0]->id, first[0]->id);

  EXPECT_EQ(sink->payloads(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(StoredIds(MessageId::Min(), MessageId::Max()).size(), 3u);
  // Producers are independent; messages without a producer name are never de-duplicated.
  EXPECT_FALSE(Send({Sequenced("x", "p2", 1)})[0]->duplicate);
  EXPECT_FALSE(Send({Sequenced("y", "", 0)})[0]->duplicate);
  EXPECT_FALSE(Send({Sequenced("z", "", 0)})[0]->duplicate);
}

TEST_F(BrokerDedupeTest, ForgottenProducerStartsOver) {
  Send({Sequenced("a", "gen", 0)});
  broker_.ForgetProducer(topic_, "gen");
  EXPECT_EQ(broker_.LastSequence(topic_, "gen"), std::nullopt);
  EXPECT_FALSE(Send({Sequenced("a2", "gen", 0)})[0]->duplicate);
}

TEST_F(BrokerDedupeTest, ANewBrokerLearnsTheMarksFromTheStore) {
  auto first = Send({Sequenced("a", "p1", 7)});
  Broker restarted(store_, clock_);  // same store, as after a restart
  EXPECT_EQ(restarted.LastSequence(topic_, "p1"), std::optional<uint64_t>(7));
  std::vector<MessagePtr> out;
  restarted.Publish(topic_, {Sequenced("a", "p1", 7)},
                    [&](Result<std::vector<MessagePtr>> r) { out = *r; });
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0]->duplicate);
  EXPECT_EQ(out[0]->id, first[0]->id);
}

// ---- delayed delivery ----------------------------------------------------------------------------

// Runs tasks when told to, recording when they asked to run.
class ManualScheduler final : public Scheduler {
 public:
  void RunAt(UnixMicros when, const TopicKey&, std::function<void()> task) override {
    tasks.emplace_back(when, std::move(task));
  }
  void RunAll() {
    auto run = std::move(tasks);
    tasks.clear();
    for (auto& entry : run) entry.second();
  }
  std::vector<std::pair<UnixMicros, std::function<void()>>> tasks;
};

TEST_F(BrokerTest, DelayedMessageIsStoredAtOnceAndFannedOutAtItsTime) {
  ManualScheduler scheduler;
  Broker broker(store_, clock_, &scheduler);
  auto sink = std::make_shared<RecordingSink>();
  broker.Subscribe(topic_, sink);
  DraftPtr later = Draft("later");
  later->deliver_at = clock_.Now() + 5'000'000;
  MessageId later_id;
  broker.Publish(topic_, {later, Draft("now")}, [&](Result<std::vector<MessagePtr>> r) {
    ASSERT_TRUE(r.ok());
    later_id = r->front()->id;
  });
  EXPECT_EQ(StoredIds(MessageId::Min(), MessageId::Max()).size(), 2u);
  EXPECT_EQ(sink->payloads(), std::vector<std::string>{"now"});
  ASSERT_EQ(scheduler.tasks.size(), 1u);
  EXPECT_EQ(scheduler.tasks[0].first, later->deliver_at);
  scheduler.RunAll();
  EXPECT_EQ(sink->payloads(), (std::vector<std::string>{"now", "later"}));
  EXPECT_EQ(sink->ids().back(), later_id);

  // After a restart (a new broker on the same store), the late fan-out is scheduled again.
  ManualScheduler after_restart;
  Broker restarted(store_, clock_, &after_restart);
  auto sink2 = std::make_shared<RecordingSink>();
  restarted.Subscribe(topic_, sink2);
  ASSERT_EQ(after_restart.tasks.size(), 1u);
  after_restart.RunAll();
  EXPECT_EQ(sink2->payloads(), std::vector<std::string>{"later"});
}

}  // namespace
}  // namespace magnetar::core
