#pragma once

// Time as the domain sees it. Everything that expires (TTL, retention by age, tokens, idempotency
// records) asks a Clock, so tests can move time by hand instead of sleeping.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace magnetar {

// Microseconds since the Unix epoch, UTC. One integer is enough for every timestamp we store.
using UnixMicros = int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual UnixMicros Now() const = 0;
  int64_t NowMillis() const { return Now() / 1000; }
  int64_t NowSeconds() const { return Now() / 1000000; }
};

class SystemClock final : public Clock {
 public:
  UnixMicros Now() const override;
  static const SystemClock& Instance();
};

// A clock that only moves when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(UnixMicros start = 1'700'000'000'000'000) : now_(start) {}
  UnixMicros Now() const override { return now_.load(); }
  void Advance(std::chrono::microseconds d) { now_ += d.count(); }
  void Set(UnixMicros t) { now_ = t; }

 private:
  std::atomic<UnixMicros> now_;
};

}  // namespace magnetar
