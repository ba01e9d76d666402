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

}  // namespace
}  // namespace magnetar
