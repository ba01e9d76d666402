#include "relay/idempotency.h"

#include <openssl/sha.h>

#include "common/random.h"

namespace magnetar::relay {

namespace {
// Stored values: "P\n<fingerprint>" while in flight, "D\n<fingerprint>\n<response>" when done.
constexpr char kInFlight = 'P';
constexpr char kDone = 'D';
constexpr size_t kFingerprintLen = 64;
}  // namespace

std::string IdempotencyGate::ScopedKey(std::string_view route, std::string_view user_id,
                                       std::string_view key) {
  std::string out = "idem:";
  out += route;
  out += ':';
  out += user_id;
  out += ':';
  out += key;
  return out;
}

std::string IdempotencyGate::Fingerprint(std::string_view canonical_body) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(canonical_body.data()), canonical_body.size(),
         digest);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

IdempotencyGate::Check IdempotencyGate::Claim(const std::string& scoped_key,
                                              const std::string& fingerprint) {
  // A record that expires between the failed claim and the read is claimed again; a few rounds
  // settle it (each round needs another writer to win and its record to expire in between).
  constexpr int kAttempts = 3;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const UnixMicros expires = clock_.Now() + ttl_micros_;
    auto claimed =
        kv_.PutIfAbsent(scoped_key, std::string(1, kInFlight) + "\n" + fingerprint, expires);
    if (!claimed.ok()) return {Verdict::kError, {}};
    if (*claimed) return {Verdict::kProceed, {}};
    auto existing = kv_.Get(scoped_key);
    if (!existing.ok()) return {Verdict::kError, {}};
    if (!existing->has_value()) continue;  // expired meanwhile
    const std::string& value = **existing;
    if (value.size() < 2 + kFingerprintLen) return {Verdict::kError, {}};
    if (value.compare(2, kFingerprintLen, fingerprint) != 0) return {Verdict::kMismatch, {}};
    if (value[0] == kInFlight) return {Verdict::kInFlight, {}};
    if (value[0] == kDone && value.size() >= 3 + kFingerprintLen) {
      return {Verdict::kReplay, value.substr(3 + kFingerprintLen)};
    }
    return {Verdict::kError, {}};
  }
  return {Verdict::kError, {}};
}

void IdempotencyGate::Complete(const std::string& scoped_key, const std::string& fingerprint,
                               const std::string& response) {
  (void)kv_.Put(scoped_key, std::string(1, kDone) + "\n" + fingerprint + "\n" + response,
                clock_.Now() + ttl_micros_);
}

void IdempotencyGate::Release(const std::string& scoped_key) { (void)kv_.Delete(scoped_key); }

}  // namespace magnetar::relay
