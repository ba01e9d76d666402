#include "common/random.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace magnetar {
namespace {

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

TEST(Random, Uuid4HasCanonicalForm) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string u = NewUuid4();
    ASSERT_EQ(u.size(), 36u) << u;
    for (size_t j = 0; j < u.size(); ++j) {
      if (j == 8 || j == 13 || j == 18 || j == 23) {
        EXPECT_EQ(u[j], '-') << u;
      } else {
        EXPECT_TRUE(IsLowerHex(u[j])) << u;
      }
    }
    EXPECT_EQ(u[14], '4') << u;                                         // version 4
    EXPECT_NE(std::string("89ab").find(u[19]), std::string::npos) << u;  // RFC 4122 variant
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(Random, Uuid4HexIs32LowerHex) {
  const std::string u = NewUuid4Hex();
  ASSERT_EQ(u.size(), 32u);
  for (char c : u) EXPECT_TRUE(IsLowerHex(c)) << u;
  EXPECT_EQ(u[12], '4') << u;
  EXPECT_NE(std::string("89ab").find(u[16]), std::string::npos) << u;
  EXPECT_NE(NewUuid4Hex(), NewUuid4Hex());
}

TEST(Random, BytesAndHex) {
  EXPECT_EQ(RandomBytes(0), "");
  EXPECT_EQ(RandomBytes(17).size(), 17u);
  const std::string h = RandomHex(16);
  ASSERT_EQ(h.size(), 32u);
  for (char c : h) EXPECT_TRUE(IsLowerHex(c));
  EXPECT_EQ(HexEncode(std::string("\x00\x01\xab\xff", 4)), "0001abff");
}

TEST(Base64Url, KnownVectorsWithoutPadding) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode("\xff\xfe"), "__4");  // URL alphabet, not '/' or '+'
  EXPECT_EQ(Base64UrlEncode("\xfb\xef"), "--8");
}

TEST(Base64Url, RoundTripsEveryLength) {
  for (size_t n = 0; n < 40; ++n) {
    const std::string bytes = RandomBytes(n);
    const std::string text = Base64UrlEncode(bytes);
    EXPECT_EQ(text.find_first_of("=+/"), std::string::npos) << text;
    bool ok = false;
    EXPECT_EQ(Base64UrlDecode(text, &ok), bytes);
    EXPECT_TRUE(ok);
  }
}

TEST(Base64Url, DecodeRejectsMalformed) {
  bool ok = true;
  Base64UrlDecode("Zm9v!", &ok);
  EXPECT_FALSE(ok);
  ok = true;
  Base64UrlDecode("A", &ok);  // one character cannot hold a byte
  EXPECT_FALSE(ok);
  ok = true;
  Base64UrlDecode("Zm9vY", &ok);
  EXPECT_FALSE(ok);
  ok = false;
  EXPECT_EQ(Base64UrlDecode("Zg==", &ok), "f");  // padding tolerated
  EXPECT_TRUE(ok);
}

TEST(ConstantTimeEquals, ComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
  EXPECT_TRUE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0b", 3)));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

}  // namespace
}  // namespace magnetar
