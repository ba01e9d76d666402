#pragma once

// Idempotency-Key handling (spec §2.5 with correction D7): keys are scoped per user and per route;
// a repeat with the same body gets the recorded response verbatim; a repeat with a different body
// is refused (422); a duplicate that arrives while the first is still in flight waits for it and
// gets its response. Records live in the engine's KvStore, so they hold across nodes.

#include <string>

#include "common/clock.h"
#include "core/kv_store.h"

namespace magnetar::relay {

class IdempotencyGate {
 public:
  enum class Verdict {
    kProceed,   // claimed: do the work, then Complete() or Release()
    kReplay,    // done before with the same body: answer `response`
    kMismatch,  // the key was used with a different body
    kInFlight,  // the first request with this key is still running: ask again shortly
    kError,     // the store failed
  };
  struct Check {
    Verdict verdict;
    std::string response;
  };

  IdempotencyGate(core::KvStore& kv, const Clock& clock, int ttl_seconds)
      : kv_(kv), clock_(clock), ttl_micros_(int64_t{ttl_seconds} * 1000000) {}

  static std::string ScopedKey(std::string_view route, std::string_view user_id,
                               std::string_view key);
  // SHA-256 of the canonical (re-serialised) request body.
  static std::string Fingerprint(std::string_view canonical_body);

  Check Claim(const std::string& scoped_key, const std::string& fingerprint);
  void Complete(const std::string& scoped_key, const std::string& fingerprint,
                const std::string& response);
  void Release(const std::string& scoped_key);

 private:
  core::KvStore& kv_;
  const Clock& clock_;
  int64_t ttl_micros_;
};

}  // namespace magnetar::relay
