// Durables against the real broker, in-memory store and cursor store: what is delivered, what is
// redelivered after a detach, and what survives the durable being closed and loaded again.

#include "eftl/durable.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "storage/memory/memory_cursor_store.h"
#include "storage/memory/memory_message_store.h"

namespace magnetar::eftl {
namespace {

class Recorder final : public DurableTarget {
 public:
  void PostDurableDelivery(uint64_t handle, BodyPtr body, MessageId id, uint32_t count) override {
    got.push_back({handle, *body, id, count});
  }
  void PostRevoked(uint64_t handle, int err, std::string) override { revoked.emplace_back(handle, err); }
  struct Got {
    uint64_t handle;
    std::string body;
    MessageId id;
    uint32_t count;
  };
  std::vector<Got> got;
  std::vector<std::pair<uint64_t, int>> revoked;
};

class DurableTest : public ::testing::Test {
 protected:
  DurableTest()
      : store_(SystemClock::Instance()),
        broker_(store_, SystemClock::Instance()),
        blocking_(1),
        registry_(DurableEnv{broker_, cursors_, blocking_, SystemClock::Instance()}) {}

  std::shared_ptr<Durable> Open(DurableType type, std::string_view matcher = "") {
    auto d = registry_.Open(topic_, "d1", type,
                            std::make_shared<const Matcher>(ParseMatcher(matcher).value()),
                            io_.get_executor());
    EXPECT_TRUE(d.ok()) << d.status().message();
    return d.ok() ? *d : nullptr;
  }
  void Publish(std::string payload) {
    auto draft = std::make_shared<core::Message>();
    draft->topic = topic_.name;
    draft->payload = std::move(payload);
    broker_.Publish(topic_, {draft}, [](auto) {});
  }
  void Run() {
    io_.restart();
    io_.poll();
  }

  storage::MemoryMessageStore store_;
  storage::MemoryCursorStore cursors_;
  core::Broker broker_;
  net::BlockingPool blocking_;
  DurableRegistry registry_;
  boost::asio::io_context io_;
  const core::TopicKey topic_{"u1", "orders"};
};

TEST_F(DurableTest, KeepsWhatIsNotAckedAcrossDetachAndReload) {
  Publish(R"({"before":1})");  // before the durable existed: not for it
  auto d = Open(DurableType::kStandard, R"({"keep":true})");
  auto rec = std::make_shared<Recorder>();
  d->Attach(1, rec, 10);
  Run();
  Publish(R"({"keep":1})");
  Publish(R"({"skip":1})");  // not matched: acked as read
  Publish(R"({"keep":2})");
  Publish(R"({"keep":3})");
  Run();
  ASSERT_EQ(rec->got.size(), 3u);
  EXPECT_EQ(rec->got[0].body, R"({"keep":1})");
  EXPECT_EQ(rec->got[0].count, 1u);
  d->Ack(1, {rec->got[0].id});
  d->Detach(1);  // the last subscriber: the durable stays, with its counts
  Run();
  Publish(R"({"keep":4})");  // while nobody is attached
  Run();
  auto again = Open(DurableType::kStandard, R"({"keep":true})");
  EXPECT_EQ(again, d);
  auto rec2 = std::make_shared<Recorder>();
  again->Attach(2, rec2, 10);
  Run();
  ASSERT_EQ(rec2->got.size(), 3u);  // keep 2 and 3 again (keep 1 was acked), then 4
  EXPECT_EQ(rec2->got[0].body, R"({"keep":2})");
  EXPECT_EQ(rec2->got[0].count, 2u);
  EXPECT_EQ(rec2->got[2].body, R"({"keep":4})");
  EXPECT_EQ(rec2->got[2].count, 1u);
}

TEST_F(DurableTest, ANewRegistryLoadsTheCursor) {
  auto d = Open(DurableType::kStandard);
  auto rec = std::make_shared<Recorder>();
  d->Attach(1, rec, 10);
  Run();
  Publish(R"({"n":1})");
  Publish(R"({"n":2})");
  Run();
  ASSERT_EQ(rec->got.size(), 2u);
  d->Ack(1, {rec->got[0].id});
  Run();
  // As after a restart: another registry over the same stores.
  DurableRegistry fresh(DurableEnv{broker_, cursors_, blocking_, SystemClock::Instance()});
  auto loaded = fresh.Open(topic_, "d1", DurableType::kStandard, nullptr, io_.get_executor());
  ASSERT_TRUE(loaded.ok());
  auto rec2 = std::make_shared<Recorder>();
  (*loaded)->Attach(5, rec2, 10);
  Run();
  ASSERT_EQ(rec2->got.size(), 1u);
  EXPECT_EQ(rec2->got[0].body, R"({"n":2})");
  d->Detach(1);
  (*loaded)->Detach(5);
  Run();
}

TEST_F(DurableTest, WindowAndRedeliveryCount) {
  auto d = Open(DurableType::kStandard);
  auto rec = std::make_shared<Recorder>();
  d->Attach(1, rec, 2);
  Run();
  for (int i = 0; i < 4; ++i) Publish("{\"n\":" + std::to_string(i) + "}");
  Run();
  ASSERT_EQ(rec->got.size(), 2u);  // window 2
  d->Ack(1, {rec->got[0].id});
  Run();
  ASSERT_EQ(rec->got.size(), 3u);
  // A second standard subscriber takes over; the first's unacked come again, counted.
  auto rec2 = std::make_shared<Recorder>();
  d->Attach(2, rec2, 10);
  Run();
  ASSERT_EQ(rec->revoked.size(), 1u);
  EXPECT_EQ(rec->revoked[0].second, 21);
  ASSERT_EQ(rec2->got.size(), 3u);
  EXPECT_EQ(rec2->got[0].body, R"({"n":1})");
  EXPECT_EQ(rec2->got[0].count, 2u);
  EXPECT_EQ(rec2->got[2].body, R"({"n":3})");
  EXPECT_EQ(rec2->got[2].count, 1u);
}

TEST_F(DurableTest, SharedSplitsMessagesAndDeleteRemovesTheCursor) {
  auto d = Open(DurableType::kShared);
  auto a = std::make_shared<Recorder>();
  auto b = std::make_shared<Recorder>();
  d->Attach(1, a, 10);
  d->Attach(2, b, 10);
  Run();
  for (int i = 0; i < 4; ++i) Publish("{\"n\":" + std::to_string(i) + "}");
  Run();
  EXPECT_EQ(a->got.size() + b->got.size(), 4u);
  EXPECT_GE(a->got.size(), 1u);
  EXPECT_GE(b->got.size(), 1u);
  EXPECT_FALSE(registry_.Open(topic_, "d1", DurableType::kStandard, nullptr, io_.get_executor()).ok());
  d->Delete(1);
  Run();
  EXPECT_EQ(b->revoked.size(), 1u);
  EXPECT_EQ(cursors_.Load(topic_, DurableCursorName("d1")).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace magnetar::eftl
