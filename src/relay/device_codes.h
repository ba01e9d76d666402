#pragma once

// DeviceCodes: the records of the OAuth device authorization grant (RFC 8628; relay spec §5.7 with
// Magnetar's differences, see README.md) and their state machine:
//
//   pending --approve--> approved --token poll--> consumed (deleted)
//      |  \--deny-----> denied   --token poll--> deleted (the poll answers access_denied)
//      \---past expires_at--> expired (persisted on the next poll or decision)
//
// Storage. A record lives in the engine's KvStore as JSON under "device:code:<sha256 hex of the
// device_code>" (the wire device_code itself is never stored); "device:user:<XXXX-XXXX>" maps the
// user code to that hash. Both expire a minute after the code does, so the store's own sweep
// removes abandoned records.
//
// Atomicity. Every state change is a KvStore::CompareAndSet from the exact record read to the new
// one, retried on a lost race, so transitions hold across threads and, on a shared engine, across
// nodes: of two polls of an approved code exactly one consumes it; an approval and a denial of the
// same pending code cannot both win.
//
// Thread-safety: every method may be called from any thread. The KvStore and Clock must outlive
// the object.

#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "core/kv_store.h"

namespace magnetar::relay {

inline constexpr char kDeviceCodeKeyPrefix[] = "device:code:";
inline constexpr char kDeviceUserCodeKeyPrefix[] = "device:user:";
// 28 symbols: no vowels (no words), no 0/O, 1/I/L look-alikes (spec §5.7).
inline constexpr std::string_view kUserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ23456789";
inline constexpr char kDeviceCodeGrantType[] = "urn:ietf:params:oauth:grant-type:device_code";
// RFC 8628 §3.5: each slow_down adds this much to the interval; the interval never exceeds the cap.
inline constexpr int kSlowDownStepSeconds = 5;
inline constexpr int kMaxIntervalSeconds = 300;
// A poll this early is still on time: network jitter must not punish a client that waited the
// whole interval before sending.
inline constexpr int64_t kPollToleranceMicros = 500'000;
// Longest device_code accepted for a lookup (ours are 43 characters).
inline constexpr size_t kMaxDeviceCodeBytes = 128;

// "XXXX-XXXX": 8 symbols drawn uniformly from kUserCodeAlphabet (OpenSSL RAND_bytes).
std::string GenerateUserCode();

// What a person typed, as the canonical "XXXX-XXXX": case-insensitive, with or without the dash,
// spaces around and inside ignored. nullopt unless exactly 8 alphabet symbols remain (so nothing
// malformed is ever looked up).
std::optional<std::string> NormalizeUserCode(std::string_view input);

// `text` with every byte that is not part of a well-formed UTF-8 sequence (overlong forms,
// surrogates and code points past U+10FFFF included) replaced by U+FFFD, so a client hint from a
// form or a User-Agent can always be stored as JSON and read back.
std::string ValidUtf8(std::string_view text);

enum class DeviceStatus { kPending, kApproved, kDenied, kExpired, kConsumed };
const char* DeviceStatusName(DeviceStatus status);

struct DeviceRecord {
  std::string device_hash;  // lower-case hex sha256 of the wire device_code
  std::string user_code;    // "XXXX-XXXX"
  std::optional<std::string> client_hint;
  bool pair = false;        // a second, independent refresh token was requested
  DeviceStatus status = DeviceStatus::kPending;
  UnixMicros issued_at = 0;
  UnixMicros expires_at = 0;
  int interval_seconds = 5;  // raised by every slow_down
  std::optional<UnixMicros> last_polled_at;
  std::string user_id;       // who approved or denied
  std::optional<UnixMicros> decided_at;
};

std::string SerializeDeviceRecord(const DeviceRecord& record);
std::optional<DeviceRecord> ParseDeviceRecord(std::string_view text);

struct DeviceCodeOptions {
  int ttl_seconds = 600;      // --device-code-ttl-seconds
  int interval_seconds = 5;   // --device-code-poll-interval
};

struct DeviceAuthorization {
  std::string device_code;  // 32 random bytes base64url (43 chars): hand to the client, never log
  DeviceRecord record;
};

// The outcome of one token poll, in the evaluation order of spec §5.7.
struct DevicePoll {
  enum class Kind {
    kUnknown,   // no such device_code (or already consumed)
    kExpired,   // past expiry (now persisted as expired)
    kDenied,    // denied; the record is gone now
    kSlowDown,  // polled before the interval had passed; the interval was raised
    kPending,   // not decided yet
    kApproved,  // approved: call Consume() to take it
    kUnexpected,
  };
  Kind kind = Kind::kUnknown;
  DeviceRecord record;
  std::string stored;  // kApproved: the exact stored value Consume() swaps from
};

class DeviceCodes {
 public:
  DeviceCodes(core::KvStore& kv, const Clock& clock, DeviceCodeOptions options);

  DeviceCodes(const DeviceCodes&) = delete;
  DeviceCodes& operator=(const DeviceCodes&) = delete;

  const DeviceCodeOptions& options() const { return options_; }

  // A new pending authorization with a fresh device_code and an unused user code. The client
  // hint is stored as ValidUtf8(hint).
  Result<DeviceAuthorization> Create(std::optional<std::string> client_hint, bool pair);

  // One token poll (spec §5.7 steps 2-6; step 7 is Consume). Unlike the reference, a slow_down
  // really raises the stored interval by kSlowDownStepSeconds (RFC 8628 §3.5), and the time of
  // every poll counts, so the next poll must wait the raised interval.
  Result<DevicePoll> Poll(std::string_view device_code);

  // Takes an approved authorization exactly once: true for the one caller whose swap
  // approved -> consumed wins (the records are then deleted), false for everyone else.
  Result<bool> Consume(const DevicePoll& approved);

  // The pending, unexpired authorization of a canonical user code, or nullopt.
  Result<std::optional<DeviceRecord>> FindPending(std::string_view user_code);

  // pending -> approved / denied by `user_id`. NotFound when the code is unknown, expired or no
  // longer pending.
  Status Approve(std::string_view user_code, const std::string& user_id);
  Status Deny(std::string_view user_code, const std::string& user_id);

 private:
  // The record a user code points at, with the exact stored text, or nullopt.
  struct Stored {
    DeviceRecord record;
    std::string text;
  };
  Result<std::optional<Stored>> LoadByUserCode(std::string_view user_code);
  Result<std::optional<Stored>> LoadByHash(const std::string& device_hash);
  Status Decide(std::string_view user_code, const std::string& user_id, DeviceStatus to);
  // Swaps `from` for `to` (whose expiry the records keep); true when it won.
  Result<bool> Swap(const Stored& from, const DeviceRecord& to);
  UnixMicros KeepUntil(const DeviceRecord& record) const;
  void Forget(const DeviceRecord& record);

  core::KvStore& kv_;
  const Clock& clock_;
  const DeviceCodeOptions options_;
};

}  // namespace magnetar::relay
