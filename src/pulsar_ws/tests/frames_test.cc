#include "pulsar_ws/frames.h"

#include <gtest/gtest.h>

#include "pulsar_ws/codec.h"

namespace magnetar::pulsar_ws {
namespace {

TEST(PublishFrame, ParsesFields) {
  auto p = ParsePublishFrame(
      R"({"payload":"aGVsbG8=","properties":{"a":"1","n":2},"context":5,"key":"k",)"
      R"("eventTime":"2021-10-29T16:01:38.967Z","deliverAfterMs":100,"unknown":true})",
      1000);
  ASSERT_TRUE(p.draft) << p.error_message;
  EXPECT_EQ(p.draft->payload, "hello");
  EXPECT_EQ(p.draft->format, core::PayloadFormat::kBinary);
  EXPECT_EQ(p.context, "5");
  EXPECT_EQ(p.draft->key, "k");
  EXPECT_EQ(p.deliver_at_millis, 1100);
  ASSERT_EQ(p.draft->properties.size(), 3u);
  EXPECT_EQ(p.draft->properties[1].second, "2");
  EXPECT_EQ(p.draft->properties[2].first, kEventTimeProperty);
}

TEST(PublishFrame, JsonObjectPayloadIsJson) {
  auto p = ParsePublishFrame(R"({"payload":"eyJhIjogMX0="})", 0);  // {"a": 1}
  ASSERT_TRUE(p.draft);
  EXPECT_EQ(p.draft->format, core::PayloadFormat::kJson);
}

TEST(PublishFrame, Errors) {
  EXPECT_EQ(ParsePublishFrame("nope", 0).error_code, 3);
  EXPECT_FALSE(ParsePublishFrame("nope", 0).context);
  auto missing = ParsePublishFrame(R"({"context":"c"})", 0);
  EXPECT_EQ(missing.error_code, 7);
  EXPECT_EQ(missing.context, "c");
  EXPECT_EQ(ParsePublishFrame(R"({"payload":"%%%"})", 0).error_code, 7);
  EXPECT_EQ(ParsePublishFrame(R"({"payload":"","eventTime":"yesterday"})", 0).error_code, 7);
}

TEST(PublishFrame, SequenceId) {
  EXPECT_FALSE(ParsePublishFrame(R"({"payload":""})", 0).sequence_id);
  EXPECT_EQ(ParsePublishFrame(R"({"payload":"","sequenceId":7})", 0).sequence_id, 7u);
  EXPECT_EQ(ParsePublishFrame(R"({"payload":"","sequenceId":"8"})", 0).sequence_id, 8u);
  EXPECT_FALSE(ParsePublishFrame(R"({"payload":"","sequenceId":null})", 0).sequence_id);
  for (const char* bad : {R"({"payload":"","sequenceId":-1})", R"({"payload":"","sequenceId":1.5})",
                          R"({"payload":"","sequenceId":"x"})", R"({"payload":"","sequenceId":[]})"}) {
    auto p = ParsePublishFrame(bad, 0);
    EXPECT_FALSE(p.draft) << bad;
    EXPECT_EQ(p.error_code, 3) << bad;
  }
}

TEST(PublishFrame, DeliverAtAndDeliverAfter) {
  EXPECT_EQ(ParsePublishFrame(R"({"payload":"","deliverAt":5000})", 1000).deliver_at_millis, 5000);
  EXPECT_EQ(ParsePublishFrame(R"({"payload":"","deliverAt":0})", 1000).deliver_at_millis, 0);
  EXPECT_EQ(ParsePublishFrame(R"({"payload":"","deliverAfterMs":-5})", 1000).deliver_at_millis, 0);
}

TEST(Receipts, Exact) {
  EXPECT_EQ(ReceiptOk({0, 3}, std::string("c1")), R"({"result":"ok","messageId":"CAAQAw==","context":"c1"})");
  EXPECT_EQ(ReceiptOk({0, 3}, std::nullopt), R"({"result":"ok","messageId":"CAAQAw=="})");
  EXPECT_EQ(ReceiptError(7, "bad", std::nullopt), R"({"result":"send-error:7","errorMsg":"bad"})");
}

TEST(ConsumerFrame, OmitsUnsetFields) {
  auto m = std::make_shared<core::Message>();
  m->id = {0, 3};
  m->publish_time = 1635523298967123;
  m->payload = "hi";
  const std::string frame = ConsumerFrame(m, 2);
  EXPECT_EQ(frame, R"({"messageId":"CAAQAw==","payload":"aGk=","properties":{},)"
                   R"("publishTime":"2021-10-29T16:01:38.967Z","redeliveryCount":2})");
}

}  // namespace
}  // namespace magnetar::pulsar_ws
