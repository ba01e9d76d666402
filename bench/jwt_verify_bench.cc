// JWT verification cost: the access-token check every authenticated request pays (about 40% of
// the instructions of an HTTP publish before the precomputed HMAC key). Prints ns per operation
// for OpenSSL's one-shot HMAC() (what JwtCodec used to call), the precomputed HmacSha256Key, and
// a whole JwtCodec::Verify of a typical relay token.
//
//   build/bench/jwt_verify_bench [iterations]

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "auth/hmac_sha256.h"
#include "auth/jwt.h"

namespace {

template <typename F>
double NanosPerOp(long iterations, F&& f) {
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < iterations; ++i) f();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  return std::chrono::duration<double, std::nano>(elapsed).count() / static_cast<double>(iterations);
}

volatile unsigned char sink;  // keeps the compiler from dropping the work

}  // namespace

int main(int argc, char** argv) {
  const long iterations = argc > 1 ? std::atol(argv[1]) : 200'000;
  const std::string secret = "0123456789abcdef0123456789abcdef-bench-secret";
  magnetar::auth::JwtCodec codec(secret);
  magnetar::auth::AccessClaims claims;
  claims.sub = "2f0c1c9e-6a2b-4a8e-9d0e-3f1b2c3d4e5f";
  claims.username = "alice";
  claims.permissions = {"read", "write"};
  claims.iat = 1'700'000'000;
  claims.exp = claims.iat + 1800;
  claims.jti = "0123456789abcdef0123456789abcdef";
  const std::string token = codec.Issue(claims);
  const std::string signing_input = token.substr(0, token.rfind('.'));

  const double one_shot = NanosPerOp(iterations, [&] {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
         &len);
    sink = mac[0];
  });
  const magnetar::auth::HmacSha256Key key(secret);
  const double precomputed = NanosPerOp(iterations, [&] { sink = key.Sign(signing_input)[0]; });
  const double verify = NanosPerOp(iterations, [&] {
    sink = codec.Verify(token, claims.iat + 1).ok() ? 1 : 0;
  });
  std::printf("token bytes            %zu\n", token.size());
  std::printf("HMAC() one-shot        %8.0f ns/op\n", one_shot);
  std::printf("HmacSha256Key::Sign    %8.0f ns/op\n", precomputed);
  std::printf("JwtCodec::Verify       %8.0f ns/op\n", verify);
  return 0;
}
