#include "auth/hmac_sha256.h"

#include <openssl/crypto.h>

#include <algorithm>

// OpenSSL 3 deprecates the low-level SHA256_* functions in favour of EVP, but EVP has no way to
// copy a keyed HMAC state without a heap allocation per call, which is the cost this class
// removes. The functions remain part of OpenSSL 3's API; the warning is silenced here only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace magnetar::auth {
namespace {

constexpr size_t kBlockBytes = 64;  // the SHA-256 block size
constexpr uint8_t kIpad = 0x36;
constexpr uint8_t kOpad = 0x5c;

}  // namespace

HmacSha256Key::HmacSha256Key(std::string_view key) {
  std::array<uint8_t, kBlockBytes> block{};  // the key, zero-padded to one block
  if (key.size() > kBlockBytes) {
    SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), block.data());
  } else if (!key.empty()) {
    std::copy(key.begin(), key.end(), reinterpret_cast<char*>(block.data()));
  }

  std::array<uint8_t, kBlockBytes> pad;
  for (size_t i = 0; i < kBlockBytes; ++i) pad[i] = block[i] ^ kIpad;
  SHA256_Init(&inner_);
  SHA256_Update(&inner_, pad.data(), pad.size());
  for (size_t i = 0; i < kBlockBytes; ++i) pad[i] = block[i] ^ kOpad;
  SHA256_Init(&outer_);
  SHA256_Update(&outer_, pad.data(), pad.size());

  // The key material does not outlive the constructor except inside the hash states.
  OPENSSL_cleanse(block.data(), block.size());
  OPENSSL_cleanse(pad.data(), pad.size());
}

HmacSha256Key::Mac HmacSha256Key::Sign(std::string_view data) const {
  Mac inner_digest;
  SHA256_CTX ctx = inner_;
  SHA256_Update(&ctx, data.data(), data.size());
  SHA256_Final(inner_digest.data(), &ctx);

  Mac mac;
  ctx = outer_;
  SHA256_Update(&ctx, inner_digest.data(), inner_digest.size());
  SHA256_Final(mac.data(), &ctx);
  OPENSSL_cleanse(&ctx, sizeof(ctx));
  return mac;
}

std::string HmacSha256Key::SignToString(std::string_view data) const {
  const Mac mac = Sign(data);
  return std::string(reinterpret_cast<const char*>(mac.data()), mac.size());
}

}  // namespace magnetar::auth

#pragma GCC diagnostic pop
