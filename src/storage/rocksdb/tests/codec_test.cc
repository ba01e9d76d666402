#include "storage/rocksdb/codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace magnetar::storage::rocks {
namespace {

TEST(CodecTest, OrderedStringsRoundTripAndKeepOrder) {
  const std::vector<std::string> names = {
      "",   "a", std::string("a\0", 2),     std::string("a\0b", 3),
      "ab", "b", std::string("\xff\x00", 2)};
  std::vector<std::pair<std::string, std::string>> encoded;
  for (const auto& n : names) {
    std::string out;
    AppendOrderedString(out, n);
    std::string_view in = out;
    std::string back;
    ASSERT_TRUE(ReadOrderedString(in, &back));
    EXPECT_TRUE(in.empty());
    EXPECT_EQ(back, n);
    encoded.emplace_back(out, n);
  }
  std::sort(encoded.begin(), encoded.end());
  for (size_t i = 1; i < encoded.size(); ++i) EXPECT_LT(encoded[i - 1].second, encoded[i].second);
}

TEST(CodecTest, TopicPrefixesAreNotPrefixesOfEachOther) {
  const std::string a = TopicPrefix({"owner", "job"});
  const std::string b = TopicPrefix({"owner", "jobs"});
  const std::string c = TopicPrefix({"own", "erjob"});
  EXPECT_NE(b.rfind(a, 0), 0u);
  EXPECT_NE(a.rfind(c, 0), 0u);
  core::TopicKey parsed;
  ASSERT_TRUE(ParseTopicPrefix(b, &parsed));
  EXPECT_EQ(parsed, (core::TopicKey{"owner", "jobs"}));
  EXPECT_FALSE(ParseTopicPrefix(b + "x", &parsed));
}

TEST(CodecTest, MessageKeysSortById) {
  const std::string prefix = TopicPrefix({"o", "t"});
  const std::string k1 = MessageKey(prefix, {1, 5});
  const std::string k2 = MessageKey(prefix, {1, 256});
  const std::string k3 = MessageKey(prefix, {2, 0});
  EXPECT_LT(k1, k2);
  EXPECT_LT(k2, k3);
  EXPECT_EQ(MessageKeyId(k2), (MessageId{1, 256}));
  EXPECT_LT(k3, PrefixSuccessor(prefix));
  EXPECT_EQ(PrefixSuccessor("a\xff\xff"), "b");
  EXPECT_EQ(PrefixSuccessor("\xff"), "");
}

TEST(CodecTest, MessageRoundTrip) {
  core::Message m;
  m.publish_time = 1'700'000'000'000'123;
  m.expires_at = 1'700'000'100'000'000;
  m.topic = "jobs";
  m.payload = std::string("{\"a\":1}\0bin", 11);
  m.format = core::PayloadFormat::kBinary;
  m.properties = {{"k", "v"}, {"", std::string("\0", 1)}};
  m.key = "key";
  m.producer_name = "p";
  m.sequence_id = 42;
  const std::string value = EncodeMessage(m);
  MessageHeader h;
  ASSERT_TRUE(DecodeMessageHeader(value, &h));
  EXPECT_EQ(h.byte_size, m.ByteSize());
  EXPECT_EQ(h.publish_time, m.publish_time);
  EXPECT_EQ(h.expires_at, m.expires_at);
  core::Message back;
  ASSERT_TRUE(DecodeMessage(value, &back));
  EXPECT_EQ(back.payload, m.payload);
  EXPECT_EQ(back.format, m.format);
  EXPECT_EQ(back.properties, m.properties);
  EXPECT_EQ(back.key, m.key);
  EXPECT_EQ(back.producer_name, m.producer_name);
  EXPECT_EQ(back.sequence_id, m.sequence_id);
  EXPECT_FALSE(DecodeMessage(value.substr(0, value.size() - 1), &back));
  EXPECT_FALSE(DecodeMessage("\x09" + value.substr(1), &back));
}

TEST(CodecTest, DelayedMessageIsVersion2AndUndelayedStaysVersion1) {
  core::Message m;
  m.publish_time = 1'700'000'000'000'123;
  m.payload = "p";
  m.properties = {{"k", "v"}};
  const std::string plain = EncodeMessage(m);
  EXPECT_EQ(plain[0], '\x01');
  m.deliver_at = 1'700'000'005'000'000;
  const std::string delayed = EncodeMessage(m);
  EXPECT_EQ(delayed[0], '\x02');
  EXPECT_EQ(delayed.size(), plain.size() + 8);
  MessageHeader h;
  ASSERT_TRUE(DecodeMessageHeader(delayed, &h));
  EXPECT_EQ(h.publish_time, m.publish_time);
  core::Message back;
  ASSERT_TRUE(DecodeMessage(delayed, &back));
  EXPECT_EQ(back.deliver_at, m.deliver_at);
  EXPECT_EQ(back.properties, m.properties);
  ASSERT_TRUE(DecodeMessage(plain, &back));
  EXPECT_EQ(back.deliver_at, 0);
  EXPECT_FALSE(DecodeMessage(delayed.substr(0, delayed.size() - 1), &back));
  EXPECT_FALSE(DecodeMessage("\x03" + delayed.substr(1), &back));
}

TEST(CodecTest, RecordsRoundTrip) {
  TopicMeta meta{{5, 6}, {1, 2}, 3, 4, core::RetentionPolicy{10, 20, 30}};
  TopicMeta meta_back;
  ASSERT_TRUE(DecodeTopicMeta(EncodeTopicMeta(meta), &meta_back));
  EXPECT_EQ(meta_back.last_id, meta.last_id);
  EXPECT_EQ(meta_back.first_id, meta.first_id);
  EXPECT_EQ(meta_back.count, 3u);
  ASSERT_TRUE(meta_back.policy);
  EXPECT_EQ(meta_back.policy->max_age_micros, 30);

  auth::User user;
  user.user_id = "id";
  user.username = "alice";
  user.email = "a@example.org";
  user.password_hash = "$argon2id$...";
  user.created_at = 7;
  user.permissions = {"read", "write"};
  auth::User user_back;
  ASSERT_TRUE(DecodeUser(EncodeUser(user), &user_back));
  EXPECT_EQ(user_back.username, "alice");
  EXPECT_EQ(user_back.email, user.email);
  EXPECT_EQ(user_back.permissions, user.permissions);

  core::CursorState cursor{{1, 2}, {{1, 4}, {2, 0}}};
  core::CursorState cursor_back;
  ASSERT_TRUE(DecodeCursor(EncodeCursor(cursor), &cursor_back));
  EXPECT_EQ(cursor_back, cursor);

  std::string_view value;
  UnixMicros expires = 0;
  const std::string stored = EncodeKvValue("v", 99);
  ASSERT_TRUE(DecodeKvValue(stored, &value, &expires));
  EXPECT_EQ(value, "v");
  EXPECT_EQ(expires, 99);
}

}  // namespace
}  // namespace magnetar::storage::rocks
