// The relay's message encodings (frames.h) and the WebSocket client-frame decisions
// (ws_frames.h).

#include "relay/frames.h"

#include <gtest/gtest.h>

#include "relay/json_util.h"
#include "relay/ws_frames.h"

namespace magnetar::relay {
namespace {

constexpr UnixMicros kPublished = 1'700'000'000'123'456;  // 2023-11-14T22:13:20.123456Z

core::DraftPtr Sample() {
  auto m = std::make_shared<core::Message>();
  m->id = MessageId{1700000000123, 4};
  m->publish_time = kPublished;
  m->topic = R"(jo"bs)";
  m->payload = R"({"n":1,"s":"é"})";
  m->format = core::PayloadFormat::kJson;
  return m;
}

TEST(MessageFrameTest, ExactBytesWithEmptyMetadata) {
  core::MessagePtr m = Sample();
  EXPECT_EQ(*MessageFrame(m),
            R"({"type":"message","message_id":"1700000000123-4","topic":"jo\"bs",)"
            R"("payload":{"n":1,"s":"é"},"timestamp":"2023-11-14T22:13:20.123456Z",)"
            R"("metadata":{}})");
}

TEST(MessageFrameTest, MetadataInGivenOrderAndEscaped) {
  auto draft = Sample();
  draft->topic = "jobs";
  draft->properties = {{"z", "1"}, {"a", "two\n"}, {"m\"k", "é"}};
  core::MessagePtr m = draft;
  EXPECT_EQ(*MessageFrame(m),
            R"({"type":"message","message_id":"1700000000123-4","topic":"jobs",)"
            R"("payload":{"n":1,"s":"é"},"timestamp":"2023-11-14T22:13:20.123456Z",)"
            R"("metadata":{"z":"1","a":"two\n","m\"k":"é"}})");
  auto parsed = ParseJson(*MessageFrame(m));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->at("metadata").at("a").as_string(), "two\n");
}

TEST(MessageFrameTest, TimestampAlwaysHasSixDigitsAndZ) {
  auto draft = Sample();
  draft->publish_time = 1'700'000'000'000'000;  // whole second
  core::MessagePtr whole = draft;
  EXPECT_NE(MessageFrame(whole)->find(R"("timestamp":"2023-11-14T22:13:20.000000Z")"),
            std::string::npos);
  auto draft2 = Sample();
  draft2->publish_time = 1'700'000'000'000'007;
  core::MessagePtr tiny = draft2;
  EXPECT_NE(MessageFrame(tiny)->find(R"("timestamp":"2023-11-14T22:13:20.000007Z")"),
            std::string::npos);
}

TEST(MessageFrameTest, ComputedOncePerFanOut) {
  core::MessagePtr m = Sample();
  core::Encoded first = MessageFrame(m);
  EXPECT_EQ(MessageFrame(m).get(), first.get());
  // Another pointer to the same message shares the frame too.
  core::MessagePtr alias = m;
  EXPECT_EQ(MessageFrame(alias).get(), first.get());
}

TEST(MessageFrameTest, StoredMessageDoesNotKeepItsFrame) {
  core::MessagePtr m = Sample();
  const std::string bytes = *MessageFrame(m);
  std::weak_ptr<const std::string> frame = MessageFrame(m);
  // This thread keeps what it encoded last alive for a while: push it out with other messages.
  for (int i = 0; i < 300; ++i) MessageFrame(Sample());
  EXPECT_TRUE(frame.expired());
  // Asked again, the message encodes the same bytes anew.
  EXPECT_EQ(*MessageFrame(m), bytes);
}

TEST(MessageFrameTest, IsValidJson) {
  core::MessagePtr m = Sample();
  auto parsed = ParseJson(*MessageFrame(m));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->at("type").as_string(), "message");
  EXPECT_EQ(parsed->at("topic").as_string(), R"(jo"bs)");
  EXPECT_EQ(parsed->at("payload").at("s").as_string(), "é");
  EXPECT_TRUE(parsed->at("metadata").as_object().empty());
}

TEST(AppendStoredMessageTest, SameFieldsWithoutType) {
  auto draft = Sample();
  draft->properties = {{"k", "v"}};
  std::string out = "[";
  AppendStoredMessage(out, *draft);
  out += "]";
  EXPECT_EQ(out, R"([{"message_id":"1700000000123-4","topic":"jo\"bs",)"
                 R"("payload":{"n":1,"s":"é"},"timestamp":"2023-11-14T22:13:20.123456Z",)"
                 R"("metadata":{"k":"v"}}])");
  EXPECT_EQ(out.find("\"type\""), std::string::npos);
}

TEST(AppendPayloadJsonTest, BinaryPayloadIsBase64Object) {
  auto draft = Sample();
  draft->format = core::PayloadFormat::kBinary;
  draft->payload = std::string("\x00\xff\x10hi", 5);
  std::string out;
  AppendPayloadJson(out, *draft);
  EXPECT_EQ(out, R"({"encoding":"base64","data":"AP8QaGk="})");

  draft->payload.clear();
  out.clear();
  AppendPayloadJson(out, *draft);
  EXPECT_EQ(out, R"({"encoding":"base64","data":""})");

  draft->payload = "abc";
  core::MessagePtr m = draft;
  EXPECT_EQ(*MessageFrame(m),
            R"({"type":"message","message_id":"1700000000123-4","topic":"jo\"bs",)"
            R"("payload":{"encoding":"base64","data":"YWJj"},)"
            R"("timestamp":"2023-11-14T22:13:20.123456Z","metadata":{}})");
}

TEST(AppendPayloadJsonTest, JsonPayloadIsCopiedVerbatim) {
  auto draft = Sample();
  std::string out = "x";
  AppendPayloadJson(out, *draft);
  EXPECT_EQ(out, R"(x{"n":1,"s":"é"})");
}

// ---------------------------------------------------------------------------------------------
// WebSocket client frames (spec §4.2, D15)

using Kind = ClientFrame::Kind;

TEST(ClientFrameTest, FirstFrameMustSubscribe) {
  ClientFrame f = ParseClientFrame(R"({"type":"subscribe","topics":["a","b.c"],"client_id":"c1"})",
                                   /*subscribed=*/false);
  ASSERT_EQ(f.kind, Kind::kSubscribe);
  EXPECT_EQ(f.subscribe.topics, (std::vector<std::string>{"a", "b.c"}));
  EXPECT_EQ(f.subscribe.client_id, "c1");
  EXPECT_FALSE(f.subscribe.replay_from.has_value());  // "last" by default
  ASSERT_TRUE(f.json.has_value());
  EXPECT_TRUE(f.json->is_object());

  // `type` may be left out of the first frame.
  f = ParseClientFrame(R"({"topics":["a"],"client_id":"c"})", false);
  EXPECT_EQ(f.kind, Kind::kSubscribe);

  // Anything else fails the subscription and closes.
  for (std::string_view text :
       {R"({"type":"ping"})", R"({"type":null,"topics":["a"],"client_id":"c"})", "not json",
        "[1]", R"("subscribe")", R"({"topics":["a"]})", R"({"topics":[],"client_id":"c"})",
        R"({"topics":["a b"],"client_id":"c"})", R"({"topics":["a"],"client_id":""})",
        R"({"topics":"a","client_id":"c"})", R"({"topics":["a"],"client_id":7})",
        R"({"topics":["a"],"client_id":"c","offset":5})",
        R"({"topics":["a"],"client_id":"c","offset":"middle"})"}) {
    f = ParseClientFrame(text, false);
    EXPECT_EQ(f.kind, Kind::kInvalid) << text;
    EXPECT_EQ(f.error_code, "SUBSCRIPTION_ERROR") << text;
    EXPECT_EQ(f.error_message, "Failed to subscribe") << text;
    EXPECT_TRUE(f.close) << text;
  }
}

TEST(ClientFrameTest, SubscribeLimitsAndOffsets) {
  std::string topics;
  for (int i = 0; i < 50; ++i) topics += (i ? ",\"t" : "\"t") + std::to_string(i) + "\"";
  EXPECT_EQ(ParseClientFrame(R"({"topics":[)" + topics + R"(],"client_id":"c"})", false).kind,
            Kind::kSubscribe);
  EXPECT_EQ(ParseClientFrame(R"({"topics":[)" + topics + R"(,"x"],"client_id":"c"})", false).kind,
            Kind::kInvalid);
  const std::string id255(255, 'i');
  EXPECT_EQ(ParseClientFrame(R"({"topics":["a"],"client_id":")" + id255 + "\"}", false).kind,
            Kind::kSubscribe);
  EXPECT_EQ(ParseClientFrame(R"({"topics":["a"],"client_id":")" + id255 + "i\"}", false).kind,
            Kind::kInvalid);

  ClientFrame f = ParseClientFrame(R"({"topics":["a"],"client_id":"c","offset":"first"})", false);
  ASSERT_EQ(f.kind, Kind::kSubscribe);
  EXPECT_EQ(f.subscribe.replay_from, MessageId::Min());
  f = ParseClientFrame(R"({"topics":["a"],"client_id":"c","offset":"17-3"})", false);
  ASSERT_EQ(f.kind, Kind::kSubscribe);
  EXPECT_EQ(f.subscribe.replay_from, (MessageId{17, 3}));
  f = ParseClientFrame(R"({"topics":["a"],"client_id":"c","offset":"last"})", false);
  EXPECT_FALSE(f.subscribe.replay_from.has_value());
  f = ParseClientFrame(R"({"topics":["a"],"client_id":"c","offset":null})", false);
  ASSERT_EQ(f.kind, Kind::kSubscribe);
  EXPECT_FALSE(f.subscribe.replay_from.has_value());
}

TEST(ClientFrameTest, MainLoopFrames) {
  EXPECT_EQ(ParseClientFrame(R"({"type":"ping"})", true).kind, Kind::kPing);

  ClientFrame f = ParseClientFrame(R"({"type":"ack","message_id":"1-2"})", true);
  ASSERT_EQ(f.kind, Kind::kAck);
  EXPECT_EQ(f.message_id, "1-2");

  f = ParseClientFrame(R"({"type":"unsubscribe","topics":["a","b"]})", true);
  ASSERT_EQ(f.kind, Kind::kUnsubscribe);
  EXPECT_EQ(f.topics, (std::vector<std::string>{"a", "b"}));

  // A later subscribe adds topics (D15).
  f = ParseClientFrame(R"({"type":"subscribe","topics":["c"],"client_id":"x"})", true);
  ASSERT_EQ(f.kind, Kind::kSubscribe);
  EXPECT_EQ(f.subscribe.topics, (std::vector<std::string>{"c"}));
}

TEST(ClientFrameTest, MainLoopErrors) {
  auto expect_processing_error = [](std::string_view text) {
    ClientFrame f = ParseClientFrame(text, true);
    EXPECT_EQ(f.kind, Kind::kInvalid) << text;
    EXPECT_EQ(f.error_code, "PROCESSING_ERROR") << text;
    EXPECT_EQ(f.error_message, "processing error") << text;
    EXPECT_FALSE(f.close) << text;
  };
  expect_processing_error("not json");
  expect_processing_error("[]");
  expect_processing_error("3");
  expect_processing_error(R"({"type":"ack"})");
  expect_processing_error(R"({"type":"ack","message_id":5})");
  expect_processing_error(R"({"type":"unsubscribe"})");
  expect_processing_error(R"({"type":"unsubscribe","topics":[]})");
  expect_processing_error(R"({"type":"unsubscribe","topics":["ok","no way"]})");

  // A bad later subscribe is refused without closing.
  ClientFrame f = ParseClientFrame(R"({"type":"subscribe","topics":[]})", true);
  EXPECT_EQ(f.kind, Kind::kInvalid);
  EXPECT_EQ(f.error_code, "SUBSCRIPTION_ERROR");
  EXPECT_FALSE(f.close);
}

TEST(ClientFrameTest, UnknownTypesAreNamed) {
  ClientFrame f = ParseClientFrame(R"({"type":"publish"})", true);
  ASSERT_EQ(f.kind, Kind::kUnknown);
  EXPECT_EQ(f.type_name, "publish");
  f = ParseClientFrame(R"({"topics":["a"]})", true);
  ASSERT_EQ(f.kind, Kind::kUnknown);
  EXPECT_EQ(f.type_name, "None");
  f = ParseClientFrame(R"({"type":7})", true);
  ASSERT_EQ(f.kind, Kind::kUnknown);
  EXPECT_EQ(f.type_name, "7");
  f = ParseClientFrame(R"({"type":"PING"})", true);
  EXPECT_EQ(f.kind, Kind::kUnknown);
}

}  // namespace
}  // namespace magnetar::relay
