#include "auth/hmac_sha256.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <random>
#include <string>

#include "common/random.h"

namespace magnetar::auth {
namespace {

std::string FromHex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::string MacHex(std::string_view key, std::string_view data) {
  return HexEncode(HmacSha256Key(key).SignToString(data));
}

// RFC 4231 §4: the HMAC-SHA-256 results of the test cases (case 5 truncates the output and is
// not about the MAC itself, so it is left out).
TEST(HmacSha256Test, Rfc4231Case1) {
  EXPECT_EQ(MacHex(std::string(20, '\x0b'), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(HmacSha256Test, Rfc4231Case2ShortKey) {
  EXPECT_EQ(MacHex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256Test, Rfc4231Case3) {
  EXPECT_EQ(MacHex(std::string(20, '\xaa'), std::string(50, '\xdd')),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}

TEST(HmacSha256Test, Rfc4231Case4) {
  EXPECT_EQ(MacHex(FromHex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
                   std::string(50, '\xcd')),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

TEST(HmacSha256Test, Rfc4231Case6KeyLongerThanBlock) {
  EXPECT_EQ(MacHex(std::string(131, '\xaa'),
                   "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256Test, Rfc4231Case7KeyAndDataLongerThanBlock) {
  EXPECT_EQ(MacHex(std::string(131, '\xaa'),
                   "This is a test using a larger than block-size key and a larger than "
                   "block-size data. The key needs to be hashed before being used by the HMAC "
                   "algorithm."),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

TEST(HmacSha256Test, SignAndSignToStringAgree) {
  const HmacSha256Key key("secret");
  const HmacSha256Key::Mac mac = key.Sign("data");
  EXPECT_EQ(key.SignToString("data"),
            std::string(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

TEST(HmacSha256Test, ReusableAcrossCalls) {
  const HmacSha256Key key("k");
  const std::string first = key.SignToString("a");
  EXPECT_NE(key.SignToString("b"), first);
  EXPECT_EQ(key.SignToString("a"), first);  // Sign does not disturb the precomputed states
}

// Against OpenSSL's one-shot HMAC() for random keys and data of every length 0..200, which
// covers the edges: empty, one block, exactly 64 (no hashing) and 65 (hashed) key bytes.
TEST(HmacSha256Test, MatchesOpenSslHmacForRandomInputs) {
  std::mt19937 rng(4231);
  for (size_t key_len = 0; key_len <= 200; ++key_len) {
    const size_t data_len = (key_len * 7 + rng()) % 201;
    const std::string key = RandomBytes(key_len);
    const std::string data = RandomBytes(data_len);
    unsigned char expected[EVP_MAX_MD_SIZE];
    unsigned int expected_len = 0;
    ASSERT_NE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                   reinterpret_cast<const unsigned char*>(data.data()), data.size(), expected,
                   &expected_len),
              nullptr);
    ASSERT_EQ(HmacSha256Key(key).SignToString(data),
              std::string(reinterpret_cast<const char*>(expected), expected_len))
        << "key_len=" << key_len << " data_len=" << data_len;
  }
  for (size_t data_len = 0; data_len <= 200; ++data_len) {
    const std::string key = RandomBytes(rng() % 201);
    const std::string data = RandomBytes(data_len);
    unsigned char expected[EVP_MAX_MD_SIZE];
    unsigned int expected_len = 0;
    ASSERT_NE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                   reinterpret_cast<const unsigned char*>(data.data()), data.size(), expected,
                   &expected_len),
              nullptr);
    ASSERT_EQ(HmacSha256Key(key).SignToString(data),
              std::string(reinterpret_cast<const char*>(expected), expected_len))
        << "key_len=" << key.size() << " data_len=" << data_len;
  }
}

}  // namespace
}  // namespace magnetar::auth
