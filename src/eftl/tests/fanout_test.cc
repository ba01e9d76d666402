// The fan-out against the real broker and in-memory store: what reaches which subscription.

#include "eftl/fanout.h"

#include <gtest/gtest.h>

#include <mutex>

#include "eftl/eftl_api.h"
#include "storage/memory/memory_message_store.h"

namespace magnetar::eftl {
namespace {

// Records what the registry hands a session.
class Recorder final : public DeliveryTarget {
 public:
  void PostDelivery(uint64_t handle, BodyPtr body, std::optional<RequestInfo> request) override {
    std::lock_guard lock(mutex);
    got.push_back({handle, *body, request ? request->req : 0});
  }
  struct Got {
    uint64_t handle;
    std::string body;
    uint64_t req;
  };
  std::mutex mutex;
  std::vector<Got> got;
};

std::shared_ptr<const Matcher> M(std::string_view text) {
  return std::make_shared<const Matcher>(ParseMatcher(text).value());
}

core::DraftPtr Draft(std::string payload, core::PayloadFormat format = core::PayloadFormat::kJson) {
  auto d = std::make_shared<core::Message>();
  d->topic = "orders";
  d->payload = std::move(payload);
  d->format = format;
  return d;
}

TEST(EftlFanout, DeliversEachStoredMessageToTheMatchingSubscriptionsOnly) {
  storage::MemoryMessageStore store(SystemClock::Instance());
  core::Broker broker(store, SystemClock::Instance());
  const core::TopicKey topic{"u1", "orders"};
  auto recorder = std::make_shared<Recorder>();
  {
    FanoutRegistry registry(broker);
    registry.Add(topic, 1, M(R"({"type":"buy"})"), recorder);
    registry.Add(topic, 2, M(R"({"qty":5})"), recorder);
    registry.Add(topic, 3, M(""), recorder);
    registry.Add({"u2", "orders"}, 4, M(""), recorder);  // another user's namespace
    EXPECT_EQ(broker.SubscriberCount(topic), 1u);        // one sink per topic, whatever the subs
    broker.Publish(topic, {Draft(R"({"type":"buy","qty":5,"price":2.5,"ok":true})")}, [](auto) {});
    broker.Publish(topic, {Draft(R"({"type":"sell","qty":5})")}, [](auto) {});
    {
      std::lock_guard lock(recorder->mutex);
      ASSERT_EQ(recorder->got.size(), 5u);
      std::multiset<uint64_t> handles;
      for (auto& g : recorder->got) handles.insert(g.handle);
      EXPECT_EQ(handles, (std::multiset<uint64_t>{1, 2, 2, 3, 3}));
      // The relay JSON mapped per docs/eftl.md: 2.5 is a double, true the string "true".
      EXPECT_EQ(recorder->got[0].body, R"({"type":"buy","qty":5,"price":{"_d_":2.5},"ok":"true"})");
    }
    registry.Remove(topic, 1);
    registry.Remove(topic, 2);
    registry.Remove(topic, 3);
    EXPECT_EQ(broker.SubscriberCount(topic), 0u);
  }
}

TEST(EftlFanout, RequestsReachOnlyMatchingSubscriptions) {
  storage::MemoryMessageStore store(SystemClock::Instance());
  core::Broker broker(store, SystemClock::Instance());
  FanoutRegistry registry(broker);
  const core::TopicKey topic{"u1", "svc"};
  auto recorder = std::make_shared<Recorder>();
  registry.Add(topic, 7, M(R"({"op":"add"})"), recorder);
  Message req = ParseMessage(R"({"op":"add","a":1})", DecodeMode::kWire).value();
  auto body = std::make_shared<const std::string>(EncodeMessage(req));
  EXPECT_EQ(registry.Dispatch(topic, req, body, {"addr", 42}), 1u);
  Message other = ParseMessage(R"({"op":"mul"})", DecodeMode::kWire).value();
  EXPECT_EQ(registry.Dispatch(topic, other, body, {"addr", 43}), 0u);
  EXPECT_EQ(registry.Dispatch({"u1", "nobody"}, req, body, {"addr", 44}), 0u);
  ASSERT_EQ(recorder->got.size(), 1u);
  EXPECT_EQ(recorder->got[0].req, 42u);
  registry.Remove(topic, 7);
}

TEST(EftlFanout, StoredMessagesOfOtherProtocolsMap) {
  core::Message binary;
  binary.format = core::PayloadFormat::kBinary;
  binary.payload = std::string("\x00\xff", 2);
  EXPECT_EQ(EncodeMessage(FromStored(binary)), R"({"_data":{"_o_":"AP8="}})");
  binary.payload = R"({"a":1})";  // a Pulsar payload that is a JSON object reads as one
  EXPECT_EQ(EncodeMessage(FromStored(binary)), R"({"a":1})");
  core::Message text;
  text.payload = "[1,2]";
  EXPECT_EQ(EncodeMessage(FromStored(text)), R"({"_payload":"[1,2]"})");
}

TEST(EftlApiHelpers, ChannelsCredentialsDestinations) {
  EXPECT_EQ(ChannelFromPath("/sales"), "sales");
  EXPECT_EQ(ChannelFromPath("/"), "eftl");
  EXPECT_EQ(ChannelFromPath("/a/b"), std::nullopt);
  EXPECT_EQ(ChannelFromPath("/.."), std::nullopt);
  auto basic = ParseBasicAuth("Basic dXNlcjpwYTpzcw==");  // user:pa:ss
  ASSERT_TRUE(basic);
  EXPECT_EQ(basic->first, "user");
  EXPECT_EQ(basic->second, "pa:ss");
  EXPECT_FALSE(ParseBasicAuth("Bearer abc"));
  EXPECT_FALSE(ParseBasicAuth("Basic !!!"));
  EXPECT_EQ(DestinationTopic("TOPIC:x"), "x");
  EXPECT_EQ(DestinationTopic("QUEUE:y"), "y");
  EXPECT_EQ(DestinationTopic("z"), "z");
}

}  // namespace
}  // namespace magnetar::eftl
