#include "auth/jwt.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/json.hpp>
#include <string>

#include "common/random.h"

namespace magnetar::auth {
namespace {

constexpr char kSecret[] = "test-secret-key-0123456789abcdef";
constexpr int64_t kNow = 1'700'000'000;

// Independent HS256 signer for hand-made tokens (any header, any payload bytes).
std::string SignRaw(std::string_view header_json, std::string_view payload_json,
                    std::string_view secret = kSecret) {
  std::string input = Base64UrlEncode(header_json) + "." + Base64UrlEncode(payload_json);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len);
  return input + "." + Base64UrlEncode(std::string_view(reinterpret_cast<char*>(mac), mac_len));
}

constexpr char kHs256Header[] = R"({"alg":"HS256","typ":"JWT"})";

std::string SignPayload(std::string_view payload_json) {
  return SignRaw(kHs256Header, payload_json);
}

AccessClaims SampleClaims() {
  AccessClaims c;
  c.sub = "2f0c1c9e-6a2b-4a8e-9d0e-3f1b2c3d4e5f";
  c.username = "alice";
  c.permissions = {"read", "write"};
  c.exp = kNow + 600;
  c.iat = kNow;
  c.jti = "0123456789abcdef0123456789abcdef";
  return c;
}

void ExpectInvalid(const Result<AccessClaims>& r) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(r.status().message(), "Invalid or expired token");
}

class JwtTest : public ::testing::Test {
 protected:
  JwtCodec codec_{kSecret};
};

TEST_F(JwtTest, RoundTrip) {
  const AccessClaims in = SampleClaims();
  Result<AccessClaims> out = codec_.Verify(codec_.Issue(in), kNow);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->sub, in.sub);
  EXPECT_EQ(out->username, in.username);
  EXPECT_EQ(out->permissions, in.permissions);
  EXPECT_EQ(out->exp, in.exp);
  EXPECT_EQ(out->iat, in.iat);
  EXPECT_EQ(out->jti, in.jti);
}

// Computed independently (Python: json.dumps(separators=(",", ":")), hmac, urlsafe_b64encode):
// the same bytes PyJWT produces for these claims.
TEST_F(JwtTest, KnownVector) {
  constexpr char kExpected[] =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
      "eyJzdWIiOiIyZjBjMWM5ZS02YTJiLTRhOGUtOWQwZS0zZjFiMmMzZDRlNWYiLCJ1c2VybmFtZSI6ImFsaWNlIiwicGVy"
      "bWlzc2lvbnMiOlsicmVhZCIsIndyaXRlIl0sImV4cCI6MTcwMDAwMDYwMCwiaWF0IjoxNzAwMDAwMDAwLCJqdGkiOiIw"
      "MTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZiJ9."
      "TAkRUm0CLwEVwsVC6rAg6P8DnWTR01k4zqmlURAIg4Q";
  EXPECT_EQ(codec_.Issue(SampleClaims()), kExpected);
  EXPECT_TRUE(codec_.Verify(kExpected, kNow).ok());
}

TEST_F(JwtTest, IssuedHeaderAndClaimsDecode) {
  const std::string token = codec_.Issue(SampleClaims());
  const size_t dot1 = token.find('.');
  const size_t dot2 = token.find('.', dot1 + 1);
  bool ok = false;
  EXPECT_EQ(Base64UrlDecode(token.substr(0, dot1), &ok), kHs256Header);
  EXPECT_TRUE(ok);
  const std::string payload = Base64UrlDecode(token.substr(dot1 + 1, dot2 - dot1 - 1), &ok);
  ASSERT_TRUE(ok);
  const boost::json::object claims = boost::json::parse(payload).as_object();
  std::vector<std::string> keys;
  for (const auto& kv : claims) keys.emplace_back(kv.key());
  EXPECT_EQ(keys,
            (std::vector<std::string>{"sub", "username", "permissions", "exp", "iat", "jti"}));
  EXPECT_EQ(claims.at("exp").as_int64(), kNow + 600);
  EXPECT_EQ(token.find('='), std::string::npos);
}

TEST_F(JwtTest, EmptyJtiIsOmittedAndAccepted) {
  AccessClaims in = SampleClaims();
  in.jti.clear();
  const std::string token = codec_.Issue(in);
  Result<AccessClaims> out = codec_.Verify(token, kNow);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->jti, "");
  bool ok = false;
  const std::string payload = Base64UrlDecode(token.substr(token.find('.') + 1), &ok);
  EXPECT_EQ(payload.find("jti"), std::string::npos);
}

TEST_F(JwtTest, ExpiryHasNoLeeway) {
  const std::string token = codec_.Issue(SampleClaims());
  EXPECT_TRUE(codec_.Verify(token, kNow + 599).ok());
  ExpectInvalid(codec_.Verify(token, kNow + 600));  // exp == now
  ExpectInvalid(codec_.Verify(token, kNow + 601));
}

TEST_F(JwtTest, TamperedSignatureRejected) {
  std::string token = codec_.Issue(SampleClaims());
  std::string flipped = token;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  ExpectInvalid(codec_.Verify(flipped, kNow));
  // Same last-byte bits but a non-canonical final character must not be accepted either.
  std::string truncated = token.substr(0, token.size() - 1);
  ExpectInvalid(codec_.Verify(truncated, kNow));
  ExpectInvalid(codec_.Verify(token + "A", kNow));
  // Signed with another secret.
  JwtCodec other("another-secret");
  ExpectInvalid(codec_.Verify(other.Issue(SampleClaims()), kNow));
}

TEST_F(JwtTest, TamperedPayloadRejected) {
  const std::string token = codec_.Issue(SampleClaims());
  AccessClaims admin = SampleClaims();
  admin.permissions = {"admin"};
  const std::string forged = codec_.Issue(admin);
  // Payload of the forged token with the signature of the original.
  const std::string spliced = forged.substr(0, forged.rfind('.')) + token.substr(token.rfind('.'));
  ExpectInvalid(codec_.Verify(spliced, kNow));
}

TEST_F(JwtTest, WrongAlgorithmRejected) {
  const std::string payload =
      R"({"sub":"u1","username":"alice","exp":1700000600,"iat":1700000000})";
  ASSERT_TRUE(codec_.Verify(SignPayload(payload), kNow).ok());
  // alg "none" with no signature, and with a valid HMAC (alg must still be HS256).
  const std::string none_header = R"({"alg":"none","typ":"JWT"})";
  ExpectInvalid(
      codec_.Verify(Base64UrlEncode(none_header) + "." + Base64UrlEncode(payload) + ".", kNow));
  ExpectInvalid(codec_.Verify(SignRaw(none_header, payload), kNow));
  // HS512 header (signed here with HS256, so only the alg check can reject it).
  ExpectInvalid(codec_.Verify(SignRaw(R"({"alg":"HS512","typ":"JWT"})", payload), kNow));
  ExpectInvalid(codec_.Verify(SignRaw(R"({"alg":"hs256","typ":"JWT"})", payload), kNow));
  ExpectInvalid(codec_.Verify(SignRaw(R"({"typ":"JWT"})", payload), kNow));
  ExpectInvalid(codec_.Verify(SignRaw(R"(["HS256"])", payload), kNow));
  // typ is not checked (PyJWT does not either).
  EXPECT_TRUE(codec_.Verify(SignRaw(R"({"alg":"HS256"})", payload), kNow).ok());
}

TEST_F(JwtTest, MissingOrMistypedClaimsRejected) {
  const char* kBad[] = {
      R"({"username":"alice","exp":1700000600,"iat":1700000000})",
      R"({"sub":"u1","exp":1700000600,"iat":1700000000})",
      R"({"sub":"u1","username":"alice","iat":1700000000})",
      R"({"sub":"u1","username":"alice","exp":1700000600})",
      R"({"sub":"","username":"alice","exp":1700000600,"iat":1700000000})",
      R"({"sub":7,"username":"alice","exp":1700000600,"iat":1700000000})",
      R"({"sub":"u1","username":null,"exp":1700000600,"iat":1700000000})",
      R"({"sub":"u1","username":"alice","exp":"1700000600","iat":1700000000})",
      R"({"sub":"u1","username":"alice","exp":1700000600.0,"iat":1700000000})",
      R"({"sub":"u1","username":"alice","exp":1700000600,"iat":true})",
      R"({"sub":"u1","username":"alice","exp":18446744073709551615,"iat":1700000000})",
      R"({"sub":"u1","username":"alice","exp":1700000600,"iat":1700000000,"jti":5})",
  };
  for (const char* payload : kBad) {
    SCOPED_TRACE(payload);
    ExpectInvalid(codec_.Verify(SignPayload(payload), kNow));
  }
}

TEST_F(JwtTest, PermissionsMustBeValidNames) {
  ExpectInvalid(
      codec_.Verify(SignPayload(R"({"sub":"u1","username":"a","permissions":["read","root"],)"
                                R"("exp":1700000600,"iat":1700000000})"),
                    kNow));
  ExpectInvalid(codec_.Verify(
      SignPayload(R"({"sub":"u1","username":"a","permissions":"admin","exp":1700000600,)"
                  R"("iat":1700000000})"),
      kNow));
  ExpectInvalid(
      codec_.Verify(SignPayload(R"({"sub":"u1","username":"a","permissions":[1],"exp":1700000600,)"
                                R"("iat":1700000000})"),
                    kNow));
  Result<AccessClaims> absent = codec_.Verify(
      SignPayload(R"({"sub":"u1","username":"a","exp":1700000600,"iat":1700000000})"), kNow);
  ASSERT_TRUE(absent.ok());
  EXPECT_TRUE(absent->permissions.empty());
  Result<AccessClaims> dupes = codec_.Verify(
      SignPayload(R"({"sub":"u1","username":"a","permissions":["read","read","admin"],)"
                  R"("exp":1700000600,"iat":1700000000})"),
      kNow);
  ASSERT_TRUE(dupes.ok());
  EXPECT_EQ(dupes->permissions, (std::vector<std::string>{"read", "read", "admin"}));
}

TEST_F(JwtTest, NotYetValidRejectedBeyondSkew) {
  const std::string claims = R"({"sub":"u1","username":"a","exp":1700000600,"iat":)";
  // iat in the future: tolerated up to the clock skew, refused beyond it.
  const std::string iat_at_skew = claims + std::to_string(kNow + kClockSkewSeconds) + "}";
  const std::string iat_after = claims + std::to_string(kNow + kClockSkewSeconds + 1) + "}";
  EXPECT_TRUE(codec_.Verify(SignPayload(iat_at_skew), kNow).ok());
  ExpectInvalid(codec_.Verify(SignPayload(iat_after), kNow));
  // nbf: the past and the skew window pass; later, or not an integer, is refused.
  const std::string base = claims + R"(1700000000,"nbf":)";
  auto with_nbf = [&](const std::string& nbf) { return SignPayload(base + nbf + "}"); };
  EXPECT_TRUE(codec_.Verify(with_nbf(std::to_string(kNow - 10)), kNow).ok());
  EXPECT_TRUE(codec_.Verify(with_nbf(std::to_string(kNow + kClockSkewSeconds)), kNow).ok());
  ExpectInvalid(codec_.Verify(with_nbf(std::to_string(kNow + kClockSkewSeconds + 1)), kNow));
  ExpectInvalid(codec_.Verify(with_nbf(R"("1699999990")"), kNow));
  ExpectInvalid(codec_.Verify(with_nbf("null"), kNow));
}

TEST_F(JwtTest, AudienceClaimRejected) {
  ExpectInvalid(codec_.Verify(
      SignPayload(R"({"sub":"u1","username":"a","exp":1700000600,"iat":1700000000,"aud":"x"})"),
      kNow));
}

TEST_F(JwtTest, GarbageRejected) {
  const std::string valid = codec_.Issue(SampleClaims());
  const std::string kGarbage[] = {
      "",
      "abc",
      "a.b",
      "..",
      "a.b.c",
      valid + ".x",
      "Bearer " + valid,
      " " + valid,
      valid.substr(0, valid.find('.')) + "=" + valid.substr(valid.find('.')),
      SignRaw(kHs256Header, "not json"),
      SignRaw(kHs256Header, "[1,2]"),
      SignRaw(kHs256Header, R"({"sub":"u1")"),
      SignRaw(kHs256Header, std::string("{\"sub\":\"\xff\",\"username\":\"a\"}")),
      SignRaw("not json", R"({"sub":"u1","username":"a","exp":1700000600,"iat":1700000000})"),
  };
  for (const std::string& token : kGarbage) {
    SCOPED_TRACE(token);
    ExpectInvalid(codec_.Verify(token, kNow));
  }
}

TEST_F(JwtTest, OversizeTokenRejected) {
  AccessClaims big = SampleClaims();
  big.username = std::string(kMaxTokenBytes, 'x');
  const std::string token = codec_.Issue(big);
  ASSERT_GT(token.size(), kMaxTokenBytes);
  ExpectInvalid(codec_.Verify(token, kNow));

  big.username = std::string(1000, 'x');
  EXPECT_TRUE(codec_.Verify(codec_.Issue(big), kNow).ok());
}

TEST(JwtDeriveKeyTest, StablePerSecretAndPurposeAndUnrelatedOtherwise) {
  const JwtCodec codec(kSecret);
  const std::string key = codec.DeriveKey("device-page-session");
  EXPECT_EQ(key.size(), 32u);
  EXPECT_EQ(codec.DeriveKey("device-page-session"), key);
  EXPECT_EQ(JwtCodec(kSecret).DeriveKey("device-page-session"), key);
  EXPECT_NE(codec.DeriveKey("device-page-csrf"), key);
  EXPECT_NE(JwtCodec(std::string(kSecret) + "2").DeriveKey("device-page-session"), key);
  EXPECT_NE(key, std::string(kSecret).substr(0, 32));
}

TEST(MakeAccessClaimsTest, FillsFromUser) {
  User user;
  user.user_id = "2f0c1c9e-6a2b-4a8e-9d0e-3f1b2c3d4e5f";
  user.username = "alice";
  user.permissions = {"write", "read"};
  const AccessClaims c = MakeAccessClaims(user, kNow, 600);
  EXPECT_EQ(c.sub, user.user_id);
  EXPECT_EQ(c.username, "alice");
  EXPECT_EQ(c.permissions, user.permissions);
  EXPECT_EQ(c.iat, kNow);
  EXPECT_EQ(c.exp, kNow + 600);
  ASSERT_EQ(c.jti.size(), 32u);
  EXPECT_EQ(c.jti.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(MakeAccessClaims(user, kNow, 600).jti, c.jti);
}

}  // namespace
}  // namespace magnetar::auth
