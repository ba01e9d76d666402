#include "core/durable_subscription.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/clock.h"
#include "storage/memory/memory_message_store.h"

namespace magnetar::core {
namespace {

using std::chrono::milliseconds;

constexpr UnixMicros kT0 = 1'700'000'000'000'000;

// Forwards to a real store; Read fails while `fail_reads` is set.
class FlakyStore final : public MessageStore {
 public:
  explicit FlakyStore(MessageStore& inner) : inner_(inner) {}
  bool fail_reads = false;

  bool blocking() const override { return inner_.blocking(); }
  void Append(const TopicKey& t, std::vector<DraftPtr> d, AppendCallback done) override {
    inner_.Append(t, std::move(d), std::move(done));
  }
  Result<ReadResult> Read(const TopicKey& t, const ReadRequest& r) override {
    if (fail_reads) return Unavailable("store down");
    return inner_.Read(t, r);
  }
  Result<TopicStats> Stats(const TopicKey& t) override { return inner_.Stats(t); }
  Status DeleteTopic(const TopicKey& t) override { return inner_.DeleteTopic(t); }
  void SetDefaultRetention(const RetentionPolicy& p) override { inner_.SetDefaultRetention(p); }
  void SetRetention(const TopicKey& t, const RetentionPolicy& p) override {
    inner_.SetRetention(t, p);
  }
  void Sweep(UnixMicros now) override { inner_.Sweep(now); }
  Status Health() override { return inner_.Health(); }

 private:
  MessageStore& inner_;
};

std::vector<MessageId> Ids(const std::vector<DeliveredMessage>& delivered) {
  std::vector<MessageId> ids;
  for (const auto& d : delivered) ids.push_back(d.message->id);
  return ids;
}

std::vector<uint32_t> Counts(const std::vector<DeliveredMessage>& delivered) {
  std::vector<uint32_t> counts;
  for (const auto& d : delivered) counts.push_back(d.redelivery_count);
  return counts;
}

class DurableSubscriptionTest : public ::testing::Test {
 protected:
  // Publishes `n` messages, one per millisecond, so ids are sparse ({ms, 0}).
  std::vector<MessageId> Publish(int n, UnixMicros expires_at = 0) {
    std::vector<MessageId> ids;
    for (int i = 0; i < n; ++i) {
      auto draft = std::make_shared<Message>();
      draft->topic = topic_.name;
      draft->payload = "m" + std::to_string(published_++);
      draft->expires_at = expires_at;
      std::vector<DraftPtr> drafts{draft};
      store_.Append(topic_, std::move(drafts), [&](Result<std::vector<MessagePtr>> r) {
        ASSERT_TRUE(r.ok());
        ids.push_back(r->front()->id);
      });
      clock_.Advance(milliseconds(1));
    }
    return ids;
  }

  std::vector<DeliveredMessage> Next(DurableSubscription& sub, size_t max, UnixMicros now = kT0) {
    auto result = sub.Next(max, now);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return result.ok() ? *result : std::vector<DeliveredMessage>{};
  }

  DurableSubscription Make(CursorState start = {}) {
    return DurableSubscription(store_, topic_, "sub", std::move(start));
  }

  int published_ = 0;
  ManualClock clock_{kT0};
  storage::MemoryMessageStore store_{clock_};
  TopicKey topic_{"owner-1", "jobs"};
};

TEST_F(DurableSubscriptionTest, DeliversNewMessagesInOrderOnce) {
  auto ids = Publish(5);
  DurableSubscription sub(store_, topic_, "sub", {});
  EXPECT_EQ(sub.name(), "sub");
  EXPECT_EQ(sub.topic(), topic_);
  EXPECT_TRUE(Next(sub, 0).empty());

  auto first = Next(sub, 3);
  EXPECT_EQ(Ids(first), (std::vector<MessageId>{ids[0], ids[1], ids[2]}));
  EXPECT_EQ(Counts(first), (std::vector<uint32_t>{0, 0, 0}));
  EXPECT_EQ(first[0].message->payload, "m0");
  EXPECT_EQ(sub.pending_count(), 3u);
  EXPECT_EQ(sub.read_position(), ids[2]);

  EXPECT_EQ(Ids(Next(sub, 10)), (std::vector<MessageId>{ids[3], ids[4]}));
  EXPECT_TRUE(Next(sub, 10).empty());
  EXPECT_EQ(sub.pending_count(), 5u);
  EXPECT_EQ(sub.mark_delete(), MessageId::Min());

  auto more = Publish(1);
  EXPECT_EQ(Ids(Next(sub, 10)), more);
}

TEST_F(DurableSubscriptionTest, IndividualAcksOutOfOrderAdvanceMarkDelete) {
  auto ids = Publish(5);
  auto sub = Make();
  Next(sub, 5);
  ASSERT_TRUE(sub.Ack(ids[1]).ok());
  ASSERT_TRUE(sub.Ack(ids[2]).ok());
  EXPECT_EQ(sub.mark_delete(), MessageId::Min());
  EXPECT_EQ(sub.Snapshot(), (CursorState{MessageId::Min(), {ids[1], ids[2]}}));
  EXPECT_EQ(sub.pending_count(), 3u);

  ASSERT_TRUE(sub.Ack(ids[0]).ok());
  EXPECT_EQ(sub.mark_delete(), ids[2]);
  EXPECT_EQ(sub.Snapshot(), (CursorState{ids[2], {}}));

  ASSERT_TRUE(sub.Ack(ids[4]).ok());
  EXPECT_EQ(sub.mark_delete(), ids[2]);
  ASSERT_TRUE(sub.Ack(ids[3]).ok());
  EXPECT_EQ(sub.mark_delete(), ids[4]);
  EXPECT_EQ(sub.pending_count(), 0u);

  // Repeated acks succeed and change nothing.
  ASSERT_TRUE(sub.Ack(ids[3]).ok());
  ASSERT_TRUE(sub.Ack(ids[0]).ok());
  EXPECT_EQ(sub.Snapshot(), (CursorState{ids[4], {}}));
}

TEST_F(DurableSubscriptionTest, DuplicateAckAboveMarkDeleteIsHarmless) {
  auto ids = Publish(3);
  auto sub = Make();
  Next(sub, 3);
  ASSERT_TRUE(sub.Ack(ids[2]).ok());
  ASSERT_TRUE(sub.Ack(ids[2]).ok());
  EXPECT_EQ(sub.Snapshot(), (CursorState{MessageId::Min(), {ids[2]}}));
  EXPECT_EQ(sub.pending_count(), 2u);
}

TEST_F(DurableSubscriptionTest, CumulativeAck) {
  auto ids = Publish(5);
  auto sub = Make();
  Next(sub, 5);
  ASSERT_TRUE(sub.Ack(ids[3]).ok());
  ASSERT_TRUE(sub.AckCumulative(ids[1]).ok());
  EXPECT_EQ(sub.mark_delete(), ids[1]);
  EXPECT_EQ(sub.pending_count(), 2u);  // ids[2], ids[4]
  ASSERT_TRUE(sub.AckCumulative(ids[2]).ok());
  EXPECT_EQ(sub.mark_delete(), ids[3]);  // over the individually acked ids[3]
  EXPECT_EQ(sub.Snapshot(), (CursorState{ids[3], {}}));
  ASSERT_TRUE(sub.AckCumulative(ids[0]).ok());  // behind: no effect
  EXPECT_EQ(sub.mark_delete(), ids[3]);
  ASSERT_TRUE(sub.AckCumulative(ids[4]).ok());
  EXPECT_EQ(sub.mark_delete(), ids[4]);
  EXPECT_EQ(sub.pending_count(), 0u);
}

TEST_F(DurableSubscriptionTest, CumulativeAckAheadOfDelivery) {
  auto ids = Publish(4);
  auto sub = Make();
  Next(sub, 1);
  ASSERT_TRUE(sub.AckCumulative(ids[2]).ok());
  EXPECT_EQ(sub.mark_delete(), ids[2]);
  EXPECT_EQ(sub.pending_count(), 0u);
  EXPECT_EQ(Ids(Next(sub, 10)), std::vector<MessageId>{ids[3]});
}

TEST_F(DurableSubscriptionTest, AckAheadOfDeliveryIsRecordedAndSkipped) {
  auto ids = Publish(4);
  auto sub = Make();
  ASSERT_TRUE(sub.Ack(ids[1]).ok());
  ASSERT_TRUE(sub.Ack(ids[2]).ok());
  EXPECT_EQ(sub.mark_delete(), MessageId::Min());
  EXPECT_EQ(Ids(Next(sub, 10)), (std::vector<MessageId>{ids[0], ids[3]}));
  ASSERT_TRUE(sub.Ack(ids[0]).ok());
  EXPECT_EQ(sub.mark_delete(), ids[2]);
  EXPECT_EQ(sub.pending_count(), 1u);
}

TEST_F(DurableSubscriptionTest, AcksOfUnknownIdsAreIgnored) {
  auto ids = Publish(2);
  auto sub = Make();
  const MessageId future{ids[1].hi + 1'000, 0};
  const MessageId between{ids[0].hi, 5};  // between two real ids, never existed
  ASSERT_TRUE(sub.Ack(future).ok());
  ASSERT_TRUE(sub.Ack(between).ok());
  ASSERT_TRUE(sub.Ack(MessageId::Max()).ok());
  ASSERT_TRUE(sub.AckCumulative(future).ok());
  ASSERT_TRUE(sub.AckCumulative(MessageId::Max()).ok());
  EXPECT_EQ(sub.Snapshot(), (CursorState{MessageId::Min(), {}}));
  EXPECT_EQ(Ids(Next(sub, 10)), ids);

  // Even once everything real is acked, a bogus ack cannot skip messages published later.
  ASSERT_TRUE(sub.Ack(ids[0]).ok());
  ASSERT_TRUE(sub.Ack(ids[1]).ok());
  ASSERT_TRUE(sub.Ack(MessageId::Max()).ok());
  EXPECT_EQ(sub.mark_delete(), ids[1]);
  clock_.Set(kT0 + 1'000'000'000);
  auto later = Publish(1);
  EXPECT_EQ(Ids(Next(sub, 10)), later);
  sub.NegativeAck(future, kT0);  // not pending: ignored
  EXPECT_EQ(sub.NextRedeliveryTime(), std::nullopt);
}

TEST_F(DurableSubscriptionTest, NegativeAckRedeliversAfterTheDelay) {
  auto ids = Publish(3);
  auto sub = Make();
  Next(sub, 3, kT0);
  EXPECT_EQ(sub.NextRedeliveryTime(), std::nullopt);
  sub.NegativeAck(ids[1], kT0 + 1'000);
  EXPECT_EQ(sub.NextRedeliveryTime(), kT0 + 1'000);
  EXPECT_TRUE(Next(sub, 10, kT0 + 999).empty());

  auto again = Next(sub, 10, kT0 + 1'000);
  EXPECT_EQ(Ids(again), std::vector<MessageId>{ids[1]});
  EXPECT_EQ(Counts(again), std::vector<uint32_t>{1});
  EXPECT_EQ(again[0].message->payload, "m1");
  EXPECT_EQ(sub.pending_count(), 3u);
  EXPECT_EQ(sub.NextRedeliveryTime(), std::nullopt);

  sub.NegativeAck(ids[1], kT0 + 2'000);
  sub.NegativeAck(ids[0], kT0 + 2'000);
  auto more = Publish(1);
  // Due redeliveries first, in id order, then new messages.
  auto batch = Next(sub, 10, kT0 + 2'000);
  EXPECT_EQ(Ids(batch), (std::vector<MessageId>{ids[0], ids[1], more[0]}));
  EXPECT_EQ(Counts(batch), (std::vector<uint32_t>{1, 2, 0}));

  // A negative ack of an acked message is ignored.
  ASSERT_TRUE(sub.Ack(ids[2]).ok());
  sub.NegativeAck(ids[2], kT0);
  EXPECT_TRUE(Next(sub, 10, kT0 + 3'000).empty());
}

TEST_F(DurableSubscriptionTest, MaxLimitsRedeliveriesAndNewMessagesTogether) {
  auto ids = Publish(4);
  auto sub = Make();
  Next(sub, 2);
  sub.NegativeAck(ids[0], kT0);
  sub.NegativeAck(ids[1], kT0);
  EXPECT_EQ(Ids(Next(sub, 1)), std::vector<MessageId>{ids[0]});
  EXPECT_EQ(Ids(Next(sub, 2)), (std::vector<MessageId>{ids[1], ids[2]}));
  EXPECT_EQ(Ids(Next(sub, 2)), std::vector<MessageId>{ids[3]});
}

TEST_F(DurableSubscriptionTest, AckTimeout) {
  auto ids = Publish(3);
  auto sub = Make();
  Next(sub, 2, kT0 + 100);
  Next(sub, 1, kT0 + 200);
  sub.ExpireAckTimeouts(kT0 + 199, 100);
  EXPECT_TRUE(Next(sub, 10, kT0 + 199).empty());
  sub.ExpireAckTimeouts(kT0 + 250, 0);  // no ack timeout configured
  EXPECT_TRUE(Next(sub, 10, kT0 + 250).empty());

  sub.ExpireAckTimeouts(kT0 + 250, 100);
  auto again = Next(sub, 10, kT0 + 250);
  EXPECT_EQ(Ids(again), (std::vector<MessageId>{ids[0], ids[1]}));
  EXPECT_EQ(Counts(again), (std::vector<uint32_t>{1, 1}));

  // The redelivery restarted their clock; ids[2] times out next.
  sub.ExpireAckTimeouts(kT0 + 300, 100);
  EXPECT_EQ(Ids(Next(sub, 10, kT0 + 300)), std::vector<MessageId>{ids[2]});
  ASSERT_TRUE(sub.Ack(ids[0]).ok());
  sub.ExpireAckTimeouts(kT0 + 350, 100);
  auto last = Next(sub, 10, kT0 + 350);
  EXPECT_EQ(Ids(last), std::vector<MessageId>{ids[1]});
  EXPECT_EQ(Counts(last), std::vector<uint32_t>{2});
}

TEST_F(DurableSubscriptionTest, AckTimeoutDoesNotOverrideANegativeAckDelay) {
  auto ids = Publish(1);
  auto sub = Make();
  Next(sub, 1, kT0);
  sub.NegativeAck(ids[0], kT0 + 10'000);
  sub.ExpireAckTimeouts(kT0 + 500, 100);
  EXPECT_TRUE(Next(sub, 10, kT0 + 500).empty());
  EXPECT_EQ(Ids(Next(sub, 10, kT0 + 10'000)), ids);
}

TEST_F(DurableSubscriptionTest, RedeliverUnacked) {
  auto ids = Publish(4);
  auto sub = Make();
  Next(sub, 4);
  ASSERT_TRUE(sub.Ack(ids[1]).ok());
  sub.RedeliverUnacked();
  ASSERT_TRUE(sub.NextRedeliveryTime().has_value());
  EXPECT_LE(*sub.NextRedeliveryTime(), kT0);
  auto again = Next(sub, 10, kT0);
  EXPECT_EQ(Ids(again), (std::vector<MessageId>{ids[0], ids[2], ids[3]}));
  EXPECT_EQ(Counts(again), (std::vector<uint32_t>{1, 1, 1}));
  EXPECT_TRUE(Next(sub, 10).empty());
  sub.RedeliverUnacked();
  EXPECT_EQ(Counts(Next(sub, 10)), (std::vector<uint32_t>{2, 2, 2}));
}

TEST_F(DurableSubscriptionTest, RestartFromSnapshot) {
  auto ids = Publish(6);
  CursorState saved;
  {
    auto sub = Make();
    Next(sub, 6);
    for (int i : {0, 1, 3, 5}) ASSERT_TRUE(sub.Ack(ids[i]).ok());
    saved = sub.Snapshot();
    EXPECT_EQ(saved, (CursorState{ids[1], {ids[3], ids[5]}}));
  }
  auto restored = Make(saved);
  EXPECT_EQ(restored.mark_delete(), ids[1]);
  EXPECT_EQ(restored.pending_count(), 0u);
  EXPECT_EQ(restored.Snapshot(), saved);
  // Every unacked message comes again, no acked one does.
  auto again = Next(restored, 100);
  EXPECT_EQ(Ids(again), (std::vector<MessageId>{ids[2], ids[4]}));
  EXPECT_EQ(Counts(again), (std::vector<uint32_t>{0, 0}));
  auto more = Publish(2);
  EXPECT_EQ(Ids(Next(restored, 100)), more);
  ASSERT_TRUE(restored.Ack(ids[2]).ok());
  EXPECT_EQ(restored.mark_delete(), ids[3]);
  ASSERT_TRUE(restored.Ack(ids[4]).ok());
  EXPECT_EQ(restored.mark_delete(), ids[5]);
}

TEST_F(DurableSubscriptionTest, SnapshotAcksAtOrBelowMarkDeleteAreDropped) {
  auto ids = Publish(3);
  auto sub = Make(CursorState{ids[1], {ids[0], ids[1], ids[2]}});
  EXPECT_EQ(sub.Snapshot(), (CursorState{ids[1], {ids[2]}}));
  EXPECT_TRUE(Next(sub, 10).empty());
}

TEST_F(DurableSubscriptionTest, TrimmedMessagesDoNotBlockMarkDelete) {
  auto ids = Publish(5);
  auto sub = Make();
  Next(sub, 5);
  ASSERT_TRUE(sub.Ack(ids[3]).ok());
  EXPECT_EQ(sub.mark_delete(), MessageId::Min());
  // Retention trims ids[0..2] while they are in flight.
  store_.SetRetention(topic_, RetentionPolicy{.max_messages = 2});
  ASSERT_TRUE(sub.Ack(ids[4]).ok());
  EXPECT_EQ(sub.mark_delete(), ids[4]);
  EXPECT_EQ(sub.pending_count(), 0u);
  EXPECT_EQ(sub.Snapshot(), (CursorState{ids[4], {}}));
}

TEST_F(DurableSubscriptionTest, GapsBetweenSparseIdsAreContiguous) {
  auto ids = Publish(4);
  auto sub = Make();
  Next(sub, 4);
  ASSERT_TRUE(sub.Ack(ids[0]).ok());
  EXPECT_EQ(sub.mark_delete(), ids[0]);  // ids are {ms, 0}: nothing live in between
  store_.SetRetention(topic_, RetentionPolicy{.max_messages = 1});  // trims ids[1], ids[2]
  ASSERT_TRUE(sub.Ack(ids[3]).ok());
  EXPECT_EQ(sub.mark_delete(), ids[3]);
  EXPECT_EQ(sub.pending_count(), 0u);
}

TEST_F(DurableSubscriptionTest, TrimmedPendingMessagesAreNotRedelivered) {
  auto ids = Publish(3);
  auto sub = Make();
  Next(sub, 3);
  store_.SetRetention(topic_, RetentionPolicy{.max_messages = 2});  // trims ids[0]
  sub.RedeliverUnacked();
  auto again = Next(sub, 10);
  EXPECT_EQ(Ids(again), (std::vector<MessageId>{ids[1], ids[2]}));
  EXPECT_EQ(sub.pending_count(), 2u);
  ASSERT_TRUE(sub.Ack(ids[1]).ok());
  EXPECT_EQ(sub.mark_delete(), ids[1]);
}

TEST_F(DurableSubscriptionTest, TrimmedBeforeDeliveryIsSkipped) {
  auto ids = Publish(5);
  store_.SetRetention(topic_, RetentionPolicy{.max_messages = 2});
  auto sub = Make();
  EXPECT_EQ(Ids(Next(sub, 10)), (std::vector<MessageId>{ids[3], ids[4]}));
  ASSERT_TRUE(sub.Ack(ids[0]).ok());  // trimmed and never delivered: ignored
  EXPECT_EQ(sub.mark_delete(), MessageId::Min());
  ASSERT_TRUE(sub.Ack(ids[3]).ok());
  EXPECT_EQ(sub.mark_delete(), ids[3]);
}

TEST_F(DurableSubscriptionTest, ExpiredMessagesAreSkippedAndDoNotBlock) {
  auto a = Publish(1);
  auto expiring = Publish(1, clock_.Now() + 5'000);
  auto b = Publish(1);
  auto sub = Make();
  EXPECT_EQ(Ids(Next(sub, 1)), a);
  clock_.Advance(milliseconds(10));  // `expiring` expires before it is delivered
  EXPECT_EQ(Ids(Next(sub, 10)), b);
  ASSERT_TRUE(sub.Ack(b[0]).ok());
  ASSERT_TRUE(sub.Ack(a[0]).ok());
  EXPECT_EQ(sub.mark_delete(), b[0]);
  EXPECT_GT(b[0], expiring[0]);
}

TEST_F(DurableSubscriptionTest, SeekBackReplaysAndSeekForwardSkips) {
  auto ids = Publish(5);
  auto sub = Make();
  Next(sub, 5);
  for (const auto& id : ids) ASSERT_TRUE(sub.Ack(id).ok());
  EXPECT_EQ(sub.mark_delete(), ids[4]);

  sub.Seek(ids[1]);
  EXPECT_EQ(sub.mark_delete(), ids[1]);
  EXPECT_EQ(sub.pending_count(), 0u);
  auto replay = Next(sub, 10);
  EXPECT_EQ(Ids(replay), (std::vector<MessageId>{ids[2], ids[3], ids[4]}));
  EXPECT_EQ(Counts(replay), (std::vector<uint32_t>{0, 0, 0}));

  ASSERT_TRUE(sub.Ack(ids[3]).ok());
  sub.Seek(ids[0]);  // acks and pending above the position are cleared
  EXPECT_EQ(sub.Snapshot(), (CursorState{ids[0], {}}));
  EXPECT_EQ(Ids(Next(sub, 10)), (std::vector<MessageId>{ids[1], ids[2], ids[3], ids[4]}));

  sub.Seek(ids[3]);  // forward: everything up to it counts as acked
  EXPECT_EQ(sub.pending_count(), 0u);
  EXPECT_EQ(Ids(Next(sub, 10)), std::vector<MessageId>{ids[4]});

  sub.Seek(MessageId::Min());
  EXPECT_EQ(Ids(Next(sub, 10)), ids);
}

TEST_F(DurableSubscriptionTest, StoreErrorsChangeNothing) {
  auto ids = Publish(3);
  FlakyStore flaky(store_);
  DurableSubscription sub(flaky, topic_, "sub", {});
  ASSERT_EQ(Ids(Next(sub, 2)), (std::vector<MessageId>{ids[0], ids[1]}));
  sub.NegativeAck(ids[0], kT0);

  flaky.fail_reads = true;
  auto failed = sub.Next(10, kT0);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(sub.read_position(), ids[1]);
  EXPECT_EQ(sub.pending_count(), 2u);
  EXPECT_EQ(sub.Ack(ids[2]).code(), StatusCode::kUnavailable);  // not delivered: needs the store
  EXPECT_FALSE(sub.AckCumulative(ids[2]).ok());

  flaky.fail_reads = false;
  auto batch = Next(sub, 10, kT0);
  EXPECT_EQ(Ids(batch), (std::vector<MessageId>{ids[0], ids[2]}));
  EXPECT_EQ(Counts(batch), (std::vector<uint32_t>{1, 0}));
}

// ---- delayed delivery -------------------------------------------------------------------------

TEST_F(DurableSubscriptionTest, DelayedMessageWaitsForItsTimeThenComesFirstTime) {
  auto before = Publish(1);
  auto draft = std::make_shared<Message>();
  draft->topic = topic_.name;
  draft->payload = "later";
  draft->deliver_at = kT0 + 60'000'000;  // in a minute
  MessageId delayed_id;
  store_.Append(topic_, {draft}, [&](Result<std::vector<MessagePtr>> r) {
    ASSERT_TRUE(r.ok());
    delayed_id = r->front()->id;
  });
  clock_.Advance(milliseconds(1));
  auto after = Publish(1);

  DurableSubscription sub = Make();
  // The delayed one is skipped; what follows it is not held back.
  EXPECT_EQ(Ids(Next(sub, 10)), (std::vector<MessageId>{before[0], after[0]}));
  EXPECT_EQ(sub.pending_count(), 3u);  // the delayed one waits as pending
  ASSERT_TRUE(sub.NextRedeliveryTime().has_value());
  EXPECT_EQ(*sub.NextRedeliveryTime(), kT0 + 60'000'000);
  // Neither a redeliver-all nor a nack brings it early.
  sub.RedeliverUnacked();
  sub.NegativeAck(delayed_id, kT0);
  auto redelivered = Next(sub, 10, kT0 + 1);
  EXPECT_EQ(Ids(redelivered), (std::vector<MessageId>{before[0], after[0]}));
  ASSERT_TRUE(sub.Ack(before[0]).ok());
  ASSERT_TRUE(sub.Ack(after[0]).ok());
  EXPECT_TRUE(Next(sub, 10, kT0 + 59'000'000).empty());
  // The mark-delete cannot pass an undelivered delayed message.
  EXPECT_EQ(sub.mark_delete(), before[0]);

  auto due = Next(sub, 10, kT0 + 60'000'000);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].message->id, delayed_id);
  EXPECT_EQ(due[0].redelivery_count, 0u);  // its first delivery
  EXPECT_FALSE(sub.NextRedeliveryTime().has_value());
  ASSERT_TRUE(sub.Ack(delayed_id).ok());
  EXPECT_EQ(sub.mark_delete(), after[0]);
}

TEST_F(DurableSubscriptionTest, DelayedMessageSurvivesARestartFromTheSnapshot) {
  auto draft = std::make_shared<Message>();
  draft->topic = topic_.name;
  draft->payload = "later";
  draft->deliver_at = kT0 + 5'000'000;
  store_.Append(topic_, {draft}, [](Result<std::vector<MessagePtr>> r) { ASSERT_TRUE(r.ok()); });
  CursorState snapshot;
  {
    DurableSubscription sub = Make();
    EXPECT_TRUE(Next(sub, 10).empty());
    EXPECT_NE(sub.read_position(), MessageId::Min());  // read past it: call again
    snapshot = sub.Snapshot();
  }
  DurableSubscription again = Make(snapshot);
  EXPECT_TRUE(Next(again, 10, kT0 + 1'000'000).empty());
  auto due = Next(again, 10, kT0 + 5'000'000);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].message->payload, "later");
  EXPECT_EQ(due[0].redelivery_count, 0u);
}

}  // namespace
}  // namespace magnetar::core
