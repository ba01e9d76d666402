#include "common/json_string.h"

#include <gtest/gtest.h>

#include <string>

namespace magnetar {
namespace {

std::string Quoted(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

TEST(AppendJsonStringTest, EscapesQuotesAndBackslash) {
  EXPECT_EQ(Quoted(""), R"("")");
  EXPECT_EQ(Quoted("plain"), R"("plain")");
  EXPECT_EQ(Quoted(R"(a"b)"), R"("a\"b")");
  EXPECT_EQ(Quoted(R"(a\b)"), R"("a\\b")");
  EXPECT_EQ(Quoted(R"(\")"), R"("\\\"")");
  // '/' is not escaped (Python's json.dumps does not).
  EXPECT_EQ(Quoted("a/b"), R"("a/b")");
}

TEST(AppendJsonStringTest, EscapesControlCharacters) {
  EXPECT_EQ(Quoted("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(Quoted(std::string_view("\x00", 1)), R"("\u0000")");
  EXPECT_EQ(Quoted("\x01\x1f"), R"("\u0001\u001f")");
  EXPECT_EQ(Quoted("\x0b"), R"("\u000b")");
  // DEL is not a JSON control character.
  EXPECT_EQ(Quoted("\x7f"), "\"\x7f\"");
}

TEST(AppendJsonStringTest, KeepsUtf8Raw) {
  EXPECT_EQ(Quoted("café 日本 🚀"), "\"café 日本 🚀\"");
}

TEST(AppendJsonStringTest, Appends) {
  std::string out = "x=";
  AppendJsonString(out, "v");
  EXPECT_EQ(out, R"(x="v")");
}

// Byte by byte, the obvious way: what the word-at-a-time scan must agree with.
std::string ReferenceQuoted(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c == '\b') out += "\\b";
    else if (c == '\f') out += "\\f";
    else if (c < 0x20) out += std::string("\\u00") + kHex[c >> 4] + kHex[c & 15];
    else out.push_back(ch);
  }
  return out + "\"";
}

TEST(AppendJsonStringTest, EveryByteAtEveryPositionOfALongString) {
  // Long strings are scanned 8 bytes at a time: each byte value that needs escaping (and its
  // neighbours 0x1f/0x20, 0x21/0x23, 0x5b/0x5d, and bytes >= 0x80) is placed at every offset
  // of a word and in the tail.
  for (int b = 0; b < 256; ++b) {
    for (size_t pos = 0; pos < 27; ++pos) {
      std::string s(27, 'a');
      s[pos] = static_cast<char>(b);
      ASSERT_EQ(Quoted(s), ReferenceQuoted(s)) << "byte " << b << " at " << pos;
    }
  }
  std::string mixed;
  for (int i = 0; i < 1000; ++i) mixed.push_back(static_cast<char>((i * 37) & 0xff));
  EXPECT_EQ(Quoted(mixed), ReferenceQuoted(mixed));
}

}  // namespace
}  // namespace magnetar
