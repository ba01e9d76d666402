#include "core/topic_name.h"

#include <gtest/gtest.h>

#include <string>

namespace magnetar::core {
namespace {

constexpr char kCharsetError[] =
    "Topic must contain only alphanumeric characters, hyphens, and underscores";

TEST(TopicName, AcceptsAsciiNames) {
  for (const std::string& name :
       {std::string("job_setup"), std::string("a.b-c"), std::string("a"), std::string("Z"),
        std::string("7"), std::string("_a_"), std::string("--x--"), std::string("v1.2.3"),
        std::string("ABCxyz019"), std::string(255, 'a'), std::string(254, '-') + "a"}) {
    EXPECT_EQ(ValidateTopicName(name), std::nullopt) << name;
  }
}

TEST(TopicName, RejectsEmpty) {
  EXPECT_EQ(ValidateTopicName(""), "Topic name must not be empty");
}

TEST(TopicName, RejectsTooLong) {
  EXPECT_EQ(ValidateTopicName(std::string(256, 'a')), "Topic name must be at most 255 characters");
  EXPECT_EQ(ValidateTopicName(std::string(1000, 'a')), "Topic name must be at most 255 characters");
}

TEST(TopicName, RejectsNamesWithoutAlphanumeric) {
  for (const char* name : {"---", "_", "-", ".", "...", "_-._"}) {
    EXPECT_EQ(ValidateTopicName(name), kCharsetError) << name;
  }
}

TEST(TopicName, RejectsOtherCharacters) {
  for (const char* name : {"a b", "café", "日本", "a/b", "a:b", "a@b", "a*b", "a\tb", "a\nb",
                           " a", "a ", "a+b", "a%2F", "١٢٣"}) {
    EXPECT_EQ(ValidateTopicName(name), kCharsetError) << name;
  }
  EXPECT_EQ(ValidateTopicName(std::string("a\0b", 3)), kCharsetError);
}

TEST(TopicName, LengthIsCountedInBytes) {
  // 128 two-byte characters: 256 bytes, rejected for length before the charset.
  std::string long_utf8;
  for (int i = 0; i < 128; ++i) long_utf8 += "é";
  EXPECT_EQ(ValidateTopicName(long_utf8), "Topic name must be at most 255 characters");
}

}  // namespace
}  // namespace magnetar::core
