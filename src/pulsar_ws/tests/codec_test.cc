#include "pulsar_ws/codec.h"

#include <gtest/gtest.h>

namespace magnetar::pulsar_ws {
namespace {

TEST(MessageIdCodec, RoundTrips) {
  for (MessageId id : {MessageId{0, 0}, MessageId{0, 3}, MessageId{1733000000123, 7},
                       MessageId{UINT64_MAX, UINT64_MAX}}) {
    auto back = DecodeMessageId(EncodeMessageId(id));
    ASSERT_TRUE(back) << id.ToString();
    EXPECT_EQ(*back, id);
  }
}

TEST(MessageIdCodec, DecodesPulsarExamples) {
  EXPECT_EQ(DecodeMessageId("CAAQAw=="), (MessageId{0, 3}));   // older encoder
  EXPECT_EQ(DecodeMessageId("CAMQADAA"), (MessageId{3, 0}));   // with batch_size 0
  EXPECT_EQ(EncodeMessageId({0, 3}), "CAAQAw==");
}

TEST(MessageIdCodec, SkipsPartitionBatchIndexAndUnknownFields) {
  // ledger 5, entry 9, partition -1 (10-byte varint), batch_index 2, ack_set packed, field 9 fixed32.
  std::string bytes = {0x08, 0x05, 0x10, 0x09, 0x18};
  bytes += std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10);
  bytes += std::string{0x20, 0x02, 0x2a, 0x01, 0x07, 0x4d, 1, 2, 3, 4};
  EXPECT_EQ(DecodeMessageIdBytes(bytes), (MessageId{5, 9}));
}

TEST(MessageIdCodec, RejectsMalformed) {
  EXPECT_FALSE(DecodeMessageId(""));
  EXPECT_FALSE(DecodeMessageId("not base64!"));
  EXPECT_FALSE(DecodeMessageId("CAA="));                                  // no entryId
  EXPECT_FALSE(DecodeMessageIdBytes(std::string("\x08\x80", 2)));          // truncated varint
  EXPECT_FALSE(DecodeMessageIdBytes(std::string("\x08\x01\x10\x01\x2a\x05", 6)));  // short length
  EXPECT_FALSE(DecodeMessageIdBytes(std::string("\x0b\x01", 2)));          // group wire type
  EXPECT_FALSE(DecodeMessageIdBytes(std::string(11, '\xff')));             // varint too long
  EXPECT_FALSE(DecodeMessageId(std::string(4000, 'A')));                   // over the bound
}

TEST(Base64, Strict) {
  EXPECT_EQ(Base64Decode("aGVsbG8="), "hello");
  EXPECT_EQ(Base64Decode(""), "");
  EXPECT_FALSE(Base64Decode("aGVsbG8"));
  EXPECT_FALSE(Base64Decode("aGV=bG8="));
  EXPECT_FALSE(Base64Decode("aGVsbG8_"));
  EXPECT_EQ(Base64Encode("hello"), "aGVsbG8=");
}

TEST(TopicPath, Producer) {
  std::string err;
  auto p = ParseTopicPath("/ws/v2/producer/persistent/alice/default/my%20topic?x=1", &err);
  ASSERT_TRUE(p) << err;
  EXPECT_EQ(p->role, Role::kProducer);
  EXPECT_TRUE(p->persistent);
  EXPECT_EQ(p->tenant, "alice");
  EXPECT_EQ(p->ns, "default");
  EXPECT_EQ(p->topic, "my topic");
  EXPECT_EQ(p->FullName(), "persistent://alice/default/my topic");
  auto multi = ParseTopicPath("/ws/v2/reader/non-persistent/a/ns/x//y", &err);
  ASSERT_TRUE(multi);
  EXPECT_FALSE(multi->persistent);
  EXPECT_EQ(multi->topic, "x/y");
}

TEST(TopicPath, Consumer) {
  std::string err;
  auto p = ParseTopicPath("/ws/v2/consumer/persistent/alice/default/t/sub-1", &err);
  ASSERT_TRUE(p) << err;
  EXPECT_EQ(p->topic, "t");
  EXPECT_EQ(p->subscription, "sub-1");
  EXPECT_FALSE(ParseTopicPath("/ws/v2/consumer/persistent/alice/default/t", &err));
  EXPECT_FALSE(ParseTopicPath("/ws/v2/consumer/persistent/alice/default/t/", &err));
  EXPECT_FALSE(ParseTopicPath("/ws/v2/consumer/persistent/alice/default/a/b/s", &err));
}

TEST(TopicPath, Refusals) {
  std::string err;
  EXPECT_FALSE(ParseTopicPath("/ws/v2/producer/persistent/alice/default", &err));
  EXPECT_FALSE(ParseTopicPath("/ws/v2/producer/durable/alice/default/t", &err));
  EXPECT_FALSE(ParseTopicPath("/ws/v2/admin/persistent/alice/default/t", &err));
  EXPECT_FALSE(ParseTopicPath("/ws/v1/producer/persistent/alice/default/t", &err));
  EXPECT_FALSE(ParseTopicPath("/ws/v2/producer/persistent/alice/default/%zz", &err));
}

TEST(JavaNumbers, ParseLikeJava) {
  EXPECT_EQ(ParseJavaInt("42"), 42);
  EXPECT_EQ(ParseJavaInt("+7"), 7);
  EXPECT_EQ(ParseJavaInt("-2147483648"), INT32_MIN);
  EXPECT_FALSE(ParseJavaInt("2147483648"));
  EXPECT_FALSE(ParseJavaInt(""));
  EXPECT_FALSE(ParseJavaInt("1.5"));
  EXPECT_FALSE(ParseJavaInt(" 1"));
  EXPECT_EQ(ParseJavaLong("-9223372036854775808"), INT64_MIN);
  EXPECT_FALSE(ParseJavaLong("9223372036854775808"));
  EXPECT_TRUE(ParseJavaBool("TRUE"));
  EXPECT_FALSE(ParseJavaBool("yes"));
}

TEST(Params, Consumer) {
  std::string err;
  auto p = ParseConsumerParams({{"subscriptionType", "Key_Shared"}, {"receiverQueueSize", "5000"},
                                {"pullMode", "true"}, {"ackTimeoutMillis", "1500"}},
                               &err);
  ASSERT_TRUE(p) << err;
  EXPECT_EQ(p->type, SubscriptionType::kKeyShared);
  EXPECT_EQ(p->receiver_queue_size, 1000);
  EXPECT_TRUE(p->pull_mode);
  EXPECT_EQ(p->ack_timeout_millis, 1500);
  EXPECT_FALSE(ParseConsumerParams({{"subscriptionType", "shared"}}, &err));
  EXPECT_FALSE(ParseConsumerParams({{"receiverQueueSize", "x"}}, &err));
  EXPECT_FALSE(ParseConsumerParams({{"receiverQueueSize", "-1"}}, &err));
  EXPECT_FALSE(ParseConsumerParams({{"ackTimeoutMillis", "10"}}, &err));
  EXPECT_FALSE(ParseConsumerParams({{"subscriptionMode", "Sticky"}}, &err));
  EXPECT_FALSE(ParseConsumerParams({{"priorityLevel", "-1"}}, &err));
  EXPECT_FALSE(ParseConsumerParams({{"negativeAckRedeliveryDelay", "soon"}}, &err));
  EXPECT_FALSE(ParseConsumerParams({{"maxRedeliverCount", "1e3"}}, &err));
}

TEST(Params, ProducerAndReader) {
  std::string err;
  auto p = ParseProducerParams({{"producerName", "p1"}, {"initialSequenceId", "10"},
                                {"compressionType", "LZ4"}, {"batchingEnabled", "true"}},
                               &err);
  ASSERT_TRUE(p) << err;
  EXPECT_EQ(p->producer_name, "p1");
  EXPECT_EQ(p->initial_sequence_id, 10);
  EXPECT_FALSE(ParseProducerParams({{"compressionType", "GZIP"}}, &err));
  EXPECT_FALSE(ParseProducerParams({{"sendTimeoutMillis", "abc"}}, &err));
  EXPECT_FALSE(ParseProducerParams({{"maxPendingMessages", "-3"}}, &err));
  EXPECT_FALSE(ParseProducerParams({{"messageRoutingMode", "Random"}}, &err));
  EXPECT_FALSE(ParseProducerParams({{"encryptionKeys", "k1"}}, &err));
  bool bad = false;
  auto r = ParseReaderParams({{"messageId", "earliest"}}, &err, &bad);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->start, ReaderParams::Start::kEarliest);
  r = ParseReaderParams({{"messageId", "CAAQAw=="}}, &err, &bad);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->start_id, (MessageId{0, 3}));
  EXPECT_FALSE(ParseReaderParams({{"messageId", "garbage"}}, &err, &bad));
  EXPECT_TRUE(bad);
  EXPECT_FALSE(ParseReaderParams({{"receiverQueueSize", "many"}}, &err, &bad));
  EXPECT_FALSE(bad);
}

TEST(PulsarTime, Milliseconds) {
  EXPECT_EQ(FormatPulsarTime(1635523298967123), "2021-10-29T16:01:38.967Z");
}

}  // namespace
}  // namespace magnetar::pulsar_ws
