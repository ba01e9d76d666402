#include "relay/device_codes.h"

#include <boost/json.hpp>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdint>

#include "common/random.h"
#include "common/time_format.h"

namespace magnetar::relay {

namespace json = boost::json;

namespace {

constexpr int64_t kMicrosPerSecond = 1'000'000;
// Records outlive their code by this much, so a late poll still hears "expired".
constexpr int64_t kKeepAfterExpiryMicros = 60 * kMicrosPerSecond;
// A lost compare-and-set means another request changed the record meanwhile: read it again.
// Past this many rounds the poller is hammering the code, which is what slow_down is for.
constexpr int kMaxSwapRounds = 8;
constexpr int kMaxUserCodeAttempts = 10;

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

std::string CodeKey(std::string_view device_hash) {
  return std::string(kDeviceCodeKeyPrefix) += device_hash;
}
std::string UserCodeKey(std::string_view user_code) {
  return std::string(kDeviceUserCodeKeyPrefix) += user_code;
}

std::optional<DeviceStatus> StatusFromName(std::string_view name) {
  for (DeviceStatus s : {DeviceStatus::kPending, DeviceStatus::kApproved, DeviceStatus::kDenied,
                         DeviceStatus::kExpired, DeviceStatus::kConsumed}) {
    if (name == DeviceStatusName(s)) return s;
  }
  return std::nullopt;
}

const json::string* StringAt(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? &v->get_string() : nullptr;
}

std::optional<UnixMicros> TimeAt(const json::object& o, std::string_view key) {
  const json::string* s = StringAt(o, key);
  return s ? ParseRfc3339(*s) : std::nullopt;
}

}  // namespace

std::string GenerateUserCode() {
  // Rejection sampling keeps every symbol equally likely: 252 = 9 * 28.
  constexpr unsigned kLimit = 256 - 256 % kUserCodeAlphabet.size();
  std::string symbols;
  while (symbols.size() < 8) {
    for (unsigned char b : RandomBytes(16)) {
      if (b >= kLimit) continue;
      symbols.push_back(kUserCodeAlphabet[b % kUserCodeAlphabet.size()]);
      if (symbols.size() == 8) break;
    }
  }
  return symbols.substr(0, 4) + "-" + symbols.substr(4);
}

std::optional<std::string> NormalizeUserCode(std::string_view input) {
  if (input.size() > 64) return std::nullopt;  // bounded: never scan a huge query value
  std::string symbols;
  for (char c : input) {
    if (c == '-' || c == ' ' || c == '\t') continue;
    const char upper = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    if (kUserCodeAlphabet.find(upper) == std::string_view::npos) return std::nullopt;
    symbols.push_back(upper);
    if (symbols.size() > 8) return std::nullopt;
  }
  if (symbols.size() != 8) return std::nullopt;
  return symbols.substr(0, 4) + "-" + symbols.substr(4);
}

std::string ValidUtf8(std::string_view text) {
  constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    size_t len = 0;
    uint32_t cp = 0, min = 0;
    if (b0 < 0x80) {
      out.push_back(static_cast<char>(b0));
      ++i;
      continue;
    }
    if ((b0 & 0xE0) == 0xC0) {
      len = 2;
      cp = b0 & 0x1F;
      min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      len = 3;
      cp = b0 & 0x0F;
      min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      len = 4;
      cp = b0 & 0x07;
      min = 0x10000;
    }
    bool ok = len != 0 && i + len <= text.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      ok = (b & 0xC0) == 0x80;
      cp = (cp << 6) | (b & 0x3F);
    }
    ok = ok && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (ok) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out.append(kReplacement);
      ++i;
    }
  }
  return out;
}

const char* DeviceStatusName(DeviceStatus status) {
  switch (status) {
    case DeviceStatus::kPending: return "pending";
    case DeviceStatus::kApproved: return "approved";
    case DeviceStatus::kDenied: return "denied";
    case DeviceStatus::kExpired: return "expired";
    case DeviceStatus::kConsumed: return "consumed";
  }
  return "expired";
}

std::string SerializeDeviceRecord(const DeviceRecord& r) {
  json::object o;
  o["device_hash"] = r.device_hash;
  o["user_code"] = r.user_code;
  o["client_hint"] = r.client_hint ? json::value(*r.client_hint) : json::value(nullptr);
  o["pair"] = r.pair;
  o["status"] = DeviceStatusName(r.status);
  o["issued_at"] = FormatRfc3339(r.issued_at);
  o["expires_at"] = FormatRfc3339(r.expires_at);
  o["interval"] = r.interval_seconds;
  o["last_polled_at"] =
      r.last_polled_at ? json::value(FormatRfc3339(*r.last_polled_at)) : json::value(nullptr);
  o["user_id"] = r.user_id;
  o["decided_at"] =
      r.decided_at ? json::value(FormatRfc3339(*r.decided_at)) : json::value(nullptr);
  return json::serialize(o);
}

std::optional<DeviceRecord> ParseDeviceRecord(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const json::object& o = v.get_object();
  DeviceRecord r;
  const json::string* hash = StringAt(o, "device_hash");
  const json::string* user_code = StringAt(o, "user_code");
  const json::string* status = StringAt(o, "status");
  auto issued = TimeAt(o, "issued_at");
  auto expires = TimeAt(o, "expires_at");
  const json::value* interval = o.if_contains("interval");
  if (!hash || !user_code || !status || !issued || !expires || !interval ||
      !interval->is_int64()) {
    return std::nullopt;
  }
  auto parsed_status = StatusFromName(*status);
  if (!parsed_status) return std::nullopt;
  r.device_hash = std::string(*hash);
  r.user_code = std::string(*user_code);
  r.status = *parsed_status;
  r.issued_at = *issued;
  r.expires_at = *expires;
  r.interval_seconds = static_cast<int>(interval->get_int64());
  if (const json::string* hint = StringAt(o, "client_hint")) r.client_hint = std::string(*hint);
  if (const json::value* pair = o.if_contains("pair"); pair && pair->is_bool()) {
    r.pair = pair->get_bool();
  }
  r.last_polled_at = TimeAt(o, "last_polled_at");
  if (const json::string* user = StringAt(o, "user_id")) r.user_id = std::string(*user);
  r.decided_at = TimeAt(o, "decided_at");
  return r;
}

DeviceCodes::DeviceCodes(core::KvStore& kv, const Clock& clock, DeviceCodeOptions options)
    : kv_(kv), clock_(clock), options_(options) {}

UnixMicros DeviceCodes::KeepUntil(const DeviceRecord& record) const {
  return record.expires_at + kKeepAfterExpiryMicros;
}

Result<DeviceAuthorization> DeviceCodes::Create(std::optional<std::string> client_hint,
                                                bool pair) {
  DeviceAuthorization out;
  out.device_code = Base64UrlEncode(RandomBytes(32));
  DeviceRecord& r = out.record;
  r.device_hash = Sha256Hex(out.device_code);
  if (client_hint) r.client_hint = ValidUtf8(*client_hint);
  r.pair = pair;
  r.issued_at = clock_.Now();
  r.expires_at = r.issued_at + int64_t{options_.ttl_seconds} * kMicrosPerSecond;
  r.interval_seconds = options_.interval_seconds;
  // Claim an unused user code first (PutIfAbsent), so two live authorizations never share one.
  bool claimed = false;
  for (int attempt = 0; attempt < kMaxUserCodeAttempts && !claimed; ++attempt) {
    r.user_code = GenerateUserCode();
    auto put = kv_.PutIfAbsent(UserCodeKey(r.user_code), r.device_hash, KeepUntil(r));
    if (!put.ok()) return put.status();
    claimed = *put;
  }
  if (!claimed) return ResourceExhausted("no unused user code found");
  if (Status s = kv_.Put(CodeKey(r.device_hash), SerializeDeviceRecord(r), KeepUntil(r));
      !s.ok()) {
    (void)kv_.Delete(UserCodeKey(r.user_code));
    return s;
  }
  return out;
}

Result<bool> DeviceCodes::Swap(const Stored& from, const DeviceRecord& to) {
  return kv_.CompareAndSet(CodeKey(to.device_hash), from.text, SerializeDeviceRecord(to),
                           KeepUntil(to));
}

void DeviceCodes::Forget(const DeviceRecord& record) {
  // Best effort: whatever is left expires with the code and the store sweeps it.
  (void)kv_.Delete(CodeKey(record.device_hash));
  (void)kv_.Delete(UserCodeKey(record.user_code));
}

Result<std::optional<DeviceCodes::Stored>> DeviceCodes::LoadByHash(
    const std::string& device_hash) {
  auto text = kv_.Get(CodeKey(device_hash));
  if (!text.ok()) return text.status();
  if (!text->has_value()) return std::optional<Stored>();
  auto record = ParseDeviceRecord(**text);
  if (!record) return Internal("corrupt device-code record");
  return std::optional<Stored>(Stored{std::move(*record), std::move(**text)});
}

Result<std::optional<DeviceCodes::Stored>> DeviceCodes::LoadByUserCode(
    std::string_view user_code) {
  auto hash = kv_.Get(UserCodeKey(user_code));
  if (!hash.ok()) return hash.status();
  if (!hash->has_value()) return std::optional<Stored>();
  auto stored = LoadByHash(**hash);
  if (!stored.ok()) return stored.status();
  // The index and the record must agree; anything else is treated as unknown.
  if (*stored && (*stored)->record.user_code != user_code) return std::optional<Stored>();
  return stored;
}

Result<DevicePoll> DeviceCodes::Poll(std::string_view device_code) {
  DevicePoll out;
  if (device_code.empty() || device_code.size() > kMaxDeviceCodeBytes) return out;  // unknown
  const std::string hash = Sha256Hex(device_code);
  for (int round = 0; round < kMaxSwapRounds; ++round) {
    auto stored = LoadByHash(hash);
    if (!stored.ok()) return stored.status();
    if (!*stored || (*stored)->record.status == DeviceStatus::kConsumed) {
      out.kind = DevicePoll::Kind::kUnknown;
      return out;
    }
    const DeviceRecord& r = (*stored)->record;
    out.record = r;
    const UnixMicros now = clock_.Now();
    if (r.status == DeviceStatus::kExpired || r.expires_at <= now) {
      if (r.status != DeviceStatus::kExpired) {
        DeviceRecord expired = r;
        expired.status = DeviceStatus::kExpired;
        auto swapped = Swap(**stored, expired);
        if (!swapped.ok()) return swapped.status();
        // Lost: someone decided it meanwhile. It is past expiry all the same.
      }
      out.kind = DevicePoll::Kind::kExpired;
      return out;
    }
    if (r.status == DeviceStatus::kDenied) {
      Forget(r);
      out.kind = DevicePoll::Kind::kDenied;
      return out;
    }
    if (r.last_polled_at &&
        now - *r.last_polled_at <
            int64_t{r.interval_seconds} * kMicrosPerSecond - kPollToleranceMicros) {
      DeviceRecord slower = r;
      slower.interval_seconds =
          std::min(kMaxIntervalSeconds, r.interval_seconds + kSlowDownStepSeconds);
      slower.last_polled_at = now;
      auto swapped = Swap(**stored, slower);
      if (!swapped.ok()) return swapped.status();
      if (!*swapped) continue;
      out.record = slower;
      out.kind = DevicePoll::Kind::kSlowDown;
      return out;
    }
    if (r.status == DeviceStatus::kPending) {
      DeviceRecord polled = r;
      polled.last_polled_at = now;
      auto swapped = Swap(**stored, polled);
      if (!swapped.ok()) return swapped.status();
      if (!*swapped) continue;
      out.record = polled;
      out.kind = DevicePoll::Kind::kPending;
      return out;
    }
    if (r.status == DeviceStatus::kApproved) {
      out.kind = DevicePoll::Kind::kApproved;
      out.stored = std::move((*stored)->text);
      return out;
    }
    out.kind = DevicePoll::Kind::kUnexpected;
    return out;
  }
  // Every round lost a race with another poll of the same code: that is polling too fast.
  out.kind = DevicePoll::Kind::kSlowDown;
  return out;
}

Result<bool> DeviceCodes::Consume(const DevicePoll& approved) {
  if (approved.kind != DevicePoll::Kind::kApproved) return false;
  DeviceRecord consumed = approved.record;
  consumed.status = DeviceStatus::kConsumed;
  consumed.last_polled_at = clock_.Now();
  auto swapped = Swap(Stored{approved.record, approved.stored}, consumed);
  if (!swapped.ok()) return swapped.status();
  if (*swapped) Forget(consumed);
  return *swapped;
}

Result<std::optional<DeviceRecord>> DeviceCodes::FindPending(std::string_view user_code) {
  auto stored = LoadByUserCode(user_code);
  if (!stored.ok()) return stored.status();
  if (!*stored || (*stored)->record.status != DeviceStatus::kPending ||
      (*stored)->record.expires_at <= clock_.Now()) {
    return std::optional<DeviceRecord>();
  }
  return std::optional<DeviceRecord>(std::move((*stored)->record));
}

Status DeviceCodes::Approve(std::string_view user_code, const std::string& user_id) {
  return Decide(user_code, user_id, DeviceStatus::kApproved);
}

Status DeviceCodes::Deny(std::string_view user_code, const std::string& user_id) {
  return Decide(user_code, user_id, DeviceStatus::kDenied);
}

Status DeviceCodes::Decide(std::string_view user_code, const std::string& user_id,
                           DeviceStatus to) {
  for (int round = 0; round < kMaxSwapRounds; ++round) {
    auto stored = LoadByUserCode(user_code);
    if (!stored.ok()) return stored.status();
    if (!*stored || (*stored)->record.status != DeviceStatus::kPending) {
      return NotFound("Unknown user_code");
    }
    const DeviceRecord& r = (*stored)->record;
    const UnixMicros now = clock_.Now();
    DeviceRecord next = r;
    if (r.expires_at <= now) {
      next.status = DeviceStatus::kExpired;
      auto swapped = Swap(**stored, next);
      if (!swapped.ok()) return swapped.status();
      return NotFound("Unknown user_code");
    }
    next.status = to;
    next.user_id = user_id;
    next.decided_at = now;
    auto swapped = Swap(**stored, next);
    if (!swapped.ok()) return swapped.status();
    if (*swapped) return Status::Ok();
    // Lost a race (a poll updated last_polled_at, or another decision won): look again.
  }
  return Unavailable("device code busy");
}

}  // namespace magnetar::relay
