#include "storage/redis/redis_codec.h"

#include <gtest/gtest.h>

namespace magnetar::storage::redis {
namespace {

TEST(RedisCodecTest, TagsShareAHashSlotAndRoundTrip) {
  const core::TopicKey odd{"own/er{x}", "na%me}"};
  const std::string tag = Tag(odd);
  EXPECT_EQ(tag.find_first_of("{}"), std::string::npos);
  EXPECT_EQ(ParseTag(tag)->owner, odd.owner);
  EXPECT_EQ(ParseTag(tag)->name, odd.name);
  EXPECT_EQ(LogKey(tag), "mg:{" + tag + "}:log");
  EXPECT_EQ(TagOfChannel(Channel(tag)), tag);
  EXPECT_EQ(TagOfChannel("other"), "");
}

TEST(RedisCodecTest, MessageBodyRoundTripsAndRejectsGarbage) {
  core::Message m;
  m.topic = "t";
  m.payload = std::string("a\0b", 3);
  m.format = core::PayloadFormat::kBinary;
  m.key = "k";
  m.producer_name = "p";
  m.sequence_id = 42;
  m.properties = {{"z", "1"}, {"a", "2"}};
  core::Message back;
  ASSERT_TRUE(DecodeMessageBody(EncodeMessageBody(m), back));
  EXPECT_EQ(back.topic, m.topic);
  EXPECT_EQ(back.payload, m.payload);
  EXPECT_EQ(back.format, m.format);
  EXPECT_EQ(back.key, m.key);
  EXPECT_EQ(back.producer_name, m.producer_name);
  EXPECT_EQ(back.sequence_id, m.sequence_id);
  EXPECT_EQ(back.properties, m.properties);
  const std::string encoded = EncodeMessageBody(m);
  for (size_t cut = 0; cut < encoded.size(); ++cut) {
    core::Message partial;
    EXPECT_FALSE(DecodeMessageBody(encoded.substr(0, cut), partial)) << cut;
  }
  EXPECT_FALSE(DecodeMessageBody("\x02rest", back));  // unknown version
}

TEST(RedisCodecTest, UsersCursorsAndTopicRecordsRoundTrip) {
  auth::User u;
  u.user_id = "id";
  u.username = "alice";
  u.email = "a@example.org";
  u.password_hash = "$argon2id$...";
  u.is_active = false;
  u.created_at = 17;
  u.permissions = {"read", "admin"};
  auth::User u2;
  ASSERT_TRUE(DecodeUser(EncodeUser(u), u2));
  EXPECT_EQ(u2.user_id, u.user_id);
  EXPECT_EQ(u2.email, u.email);
  EXPECT_EQ(u2.is_active, u.is_active);
  EXPECT_EQ(u2.created_at, u.created_at);
  EXPECT_EQ(u2.permissions, u.permissions);

  core::CursorState c{{5, 1}, {{5, 3}, {6, 0}}};
  core::CursorState c2;
  ASSERT_TRUE(DecodeCursor(EncodeCursor(c), c2));
  EXPECT_EQ(c2, c);

  core::TopicRecord r{"tid", "owner", "name", 99, std::nullopt};
  core::TopicRecord r2;
  ASSERT_TRUE(DecodeTopicRecord(EncodeTopicRecord(r), r2));
  EXPECT_EQ(r2.topic_id, "tid");
  EXPECT_EQ(r2.created_at, 99);
  EXPECT_FALSE(r2.description);
}

}  // namespace
}  // namespace magnetar::storage::redis
