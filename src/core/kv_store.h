#pragma once

// A small expiring key/value store for auxiliary records: idempotency keys, the JWT deny-list,
// rate-limit counters, device-flow records. Every engine provides one; keys are namespaced by the
// caller ("idem:…").

#include <optional>
#include <string>

#include "common/clock.h"
#include "common/status.h"

namespace magnetar::core {

class KvStore {
 public:
  virtual ~KvStore() = default;
  // Stores `value` under `key` only if the key is absent (or expired). True when stored.
  virtual Result<bool> PutIfAbsent(const std::string& key, const std::string& value,
                                   UnixMicros expires_at) = 0;
  virtual Status Put(const std::string& key, const std::string& value, UnixMicros expires_at) = 0;
  // Atomically replaces the value under `key` with `value` (and its expiry with `expires_at`)
  // only if the key is live and holds exactly `expected`. True when replaced; false when the key
  // is absent, expired or holds anything else. Of several concurrent calls that expect the same
  // value, at most one succeeds: the primitive for state transitions that must happen once.
  virtual Result<bool> CompareAndSet(const std::string& key, const std::string& expected,
                                     const std::string& value, UnixMicros expires_at) = 0;
  virtual Result<std::optional<std::string>> Get(const std::string& key) = 0;
  virtual Status Delete(const std::string& key) = 0;
  virtual void Sweep(UnixMicros now) = 0;
};

}  // namespace magnetar::core
