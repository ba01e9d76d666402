#include "auth/password.h"

#include <gtest/gtest.h>

#include <string>

namespace magnetar::auth {
namespace {

// Published vectors from the Argon2 reference implementation (phc-winner-argon2 src/test.c):
// password "password", salt "somesalt".
constexpr char kArgon2iV13[] =
    "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$wWKIMhR9lyDFvRz9YTZweHKfbftvj+qf+YFY4NeBbtA";
constexpr char kArgon2idV13[] =
    "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
constexpr char kArgon2iV10[] =  // version 0x10: no "v=" field
    "$argon2i$m=65536,t=2,p=1$c29tZXNhbHQ$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ";
// Generated with libargon2 (argon2d_hash_encoded, m=256, t=2, p=1).
constexpr char kArgon2d[] =
    "$argon2d$v=19$m=256,t=2,p=1$c29tZXNhbHQ$JcTui6RIBUtJ78gE5Hi52CO+H5vS6Z9R1uxAB6OhUB8";

constexpr std::string_view kPrefix = "$argon2id$v=19$m=65536,t=3,p=4$";

TEST(PasswordTest, HashHasPhcFormat) {
  const std::string phc = HashPassword("correct horse battery staple");
  ASSERT_TRUE(phc.starts_with(kPrefix)) << phc;
  const std::string_view rest = std::string_view(phc).substr(kPrefix.size());
  const size_t dollar = rest.find('$');
  ASSERT_NE(dollar, std::string_view::npos);
  EXPECT_EQ(dollar, 22u);                    // 16-byte salt, unpadded base64
  EXPECT_EQ(rest.size() - dollar - 1, 43u);  // 32-byte hash, unpadded base64
  EXPECT_EQ(rest.find('='), std::string_view::npos);
  EXPECT_FALSE(PasswordNeedsRehash(phc));
}

TEST(PasswordTest, VerifyMatchesOnlyTheRightPassword) {
  const std::string phc = HashPassword("s3cret-password");
  EXPECT_TRUE(VerifyPassword("s3cret-password", phc));
  EXPECT_FALSE(VerifyPassword("s3cret-passwore", phc));
  EXPECT_FALSE(VerifyPassword("", phc));
  EXPECT_FALSE(VerifyPassword("s3cret-password ", phc));
}

TEST(PasswordTest, SaltMakesHashesDiffer) {
  const std::string a = HashPassword("same");
  const std::string b = HashPassword("same");
  EXPECT_NE(a, b);
  EXPECT_TRUE(VerifyPassword("same", a));
  EXPECT_TRUE(VerifyPassword("same", b));
}

TEST(PasswordTest, EmptyAndBinaryPasswords) {
  const std::string empty = HashPassword("");
  EXPECT_TRUE(VerifyPassword("", empty));
  EXPECT_FALSE(VerifyPassword("x", empty));
  const std::string binary("a\0b", 3);
  const std::string phc = HashPassword(binary);
  EXPECT_TRUE(VerifyPassword(binary, phc));
  EXPECT_FALSE(VerifyPassword("a", phc));
}

TEST(PasswordTest, VerifiesReferenceVectorsOfEveryVariant) {
  for (const char* phc : {kArgon2iV13, kArgon2idV13, kArgon2iV10, kArgon2d}) {
    SCOPED_TRACE(phc);
    EXPECT_TRUE(VerifyPassword("password", phc));
    EXPECT_FALSE(VerifyPassword("Password", phc));
  }
}

TEST(PasswordTest, MalformedPhcNeverVerifies) {
  const std::string good = kArgon2idV13;
  const std::string kMalformed[] = {
      "",
      "password",
      "$argon2id$",
      "$argon2x$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
      "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
      "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ",
      "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$",
      "$argon2id$v=19$m=65536,t=2$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
      "$argon2id$v=19$m=abc,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
      good.substr(0, good.size() - 1),  // truncated hash
      good + std::string("\0x", 2),     // embedded NUL
      // Right hash, wrong variant label.
      "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
  };
  for (const std::string& phc : kMalformed) {
    SCOPED_TRACE(phc);
    EXPECT_FALSE(VerifyPassword("password", phc));
    EXPECT_TRUE(PasswordNeedsRehash(phc));
  }
}

TEST(PasswordTest, NeedsRehashUnlessCurrentParameters) {
  EXPECT_TRUE(PasswordNeedsRehash(kArgon2iV13));
  EXPECT_TRUE(PasswordNeedsRehash(kArgon2idV13));  // t=2, p=1
  EXPECT_TRUE(PasswordNeedsRehash(kArgon2iV10));
  EXPECT_TRUE(PasswordNeedsRehash(kArgon2d));
  const std::string current =
      "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$"
      "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
  EXPECT_FALSE(PasswordNeedsRehash(current));
  EXPECT_TRUE(
      PasswordNeedsRehash("$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$"
                          "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"));  // 8-byte salt
  EXPECT_TRUE(
      PasswordNeedsRehash("$argon2id$v=19$m=32768,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$"
                          "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"));
}

}  // namespace
}  // namespace magnetar::auth
