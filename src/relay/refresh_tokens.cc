#include "relay/refresh_tokens.h"

#include <boost/json.hpp>
#include <openssl/sha.h>

#include <algorithm>
#include <deque>
#include <map>
#include <set>

#include "common/random.h"
#include "common/time_format.h"

namespace magnetar::relay {

namespace json = boost::json;

namespace {

constexpr int64_t kMicrosPerSecond = 1000000;
// Records (and the user index) are kept this long past expiry so a late replay is recognised.
constexpr int64_t kGraceMicros = 3600 * kMicrosPerSecond;
// Anything longer cannot be one of our jtis (UUID4, 36 chars): not looked up at all.
constexpr size_t kMaxJtiBytes = 64;

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

std::string TokenKey(std::string_view jti) { return std::string(kRefreshTokenKeyPrefix) += jti; }
std::string UserKey(std::string_view user_id) {
  return std::string(kRefreshUserKeyPrefix) += user_id;
}

json::value OptionalString(const std::optional<std::string>& s) {
  return s ? json::value(*s) : json::value(nullptr);
}

json::value OptionalTime(const std::optional<UnixMicros>& t) {
  return t ? json::value(FormatRfc3339(*t)) : json::value(nullptr);
}

std::string Serialize(const RefreshTokenRecord& r) {
  json::object o;
  o["jti"] = r.jti;
  o["user_id"] = r.user_id;
  o["secret_hash"] = r.secret_hash;
  o["parent_jti"] = OptionalString(r.parent_jti);
  o["issued_at"] = FormatRfc3339(r.issued_at);
  o["expires_at"] = FormatRfc3339(r.expires_at);
  o["last_used_at"] = OptionalTime(r.last_used_at);
  o["revoked"] = r.revoked;
  o["revoked_reason"] = OptionalString(r.revoked_reason);
  o["client_hint"] = r.client_hint;
  return json::serialize(o);
}

const json::string* StringAt(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? &v->get_string() : nullptr;
}

std::optional<RefreshTokenRecord> Parse(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const json::object& o = v.get_object();
  RefreshTokenRecord r;
  const json::string* jti = StringAt(o, "jti");
  const json::string* user_id = StringAt(o, "user_id");
  const json::string* secret_hash = StringAt(o, "secret_hash");
  const json::string* issued = StringAt(o, "issued_at");
  const json::string* expires = StringAt(o, "expires_at");
  if (!jti || !user_id || !secret_hash || !issued || !expires) return std::nullopt;
  r.jti = std::string(*jti);
  r.user_id = std::string(*user_id);
  r.secret_hash = std::string(*secret_hash);
  auto issued_at = ParseRfc3339(*issued);
  auto expires_at = ParseRfc3339(*expires);
  if (!issued_at || !expires_at) return std::nullopt;
  r.issued_at = *issued_at;
  r.expires_at = *expires_at;
  if (const json::string* p = StringAt(o, "parent_jti")) r.parent_jti = std::string(*p);
  if (const json::string* used = StringAt(o, "last_used_at")) r.last_used_at = ParseRfc3339(*used);
  if (const json::value* revoked = o.if_contains("revoked")) {
    r.revoked = revoked->is_bool() ? revoked->get_bool() : !revoked->is_null();
  }
  if (const json::string* reason = StringAt(o, "revoked_reason")) {
    r.revoked_reason = std::string(*reason);
  }
  if (const json::string* hint = StringAt(o, "client_hint")) r.client_hint = std::string(*hint);
  return r;
}

Status Unauthenticated() { return magnetar::Unauthenticated(kInvalidRefreshToken); }

}  // namespace

const char* RevokeReasonName(RevokeReason reason) {
  switch (reason) {
    case RevokeReason::kRotated: return "rotated";
    case RevokeReason::kLogout: return "logout";
    case RevokeReason::kReplay: return "replay";
    case RevokeReason::kAdmin: return "admin";
    case RevokeReason::kExpired: return "expired";
  }
  return "logout";
}

std::optional<WireRefreshToken> ParseRefreshToken(std::string_view wire) {
  const size_t dot = wire.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == wire.size()) return std::nullopt;
  return WireRefreshToken{std::string(wire.substr(0, dot)), std::string(wire.substr(dot + 1))};
}

RefreshTokens::RefreshTokens(core::KvStore& kv, const Clock& clock, int ttl_days)
    : kv_(kv), clock_(clock), ttl_micros_(int64_t{ttl_days} * 86400 * kMicrosPerSecond) {}

Result<IssuedRefreshToken> RefreshTokens::Issue(const std::string& user_id,
                                                const std::string& client_hint) {
  std::lock_guard lock(mutex_);
  return IssueLocked(user_id, client_hint, std::nullopt);
}

Result<RefreshTokenRecord> RefreshTokens::Verify(std::string_view wire) {
  std::lock_guard lock(mutex_);
  return VerifyLocked(wire);
}

Result<RefreshTokenRecord> RefreshTokens::CheckForRefresh(std::string_view wire) {
  std::lock_guard lock(mutex_);
  auto verified = VerifyLocked(wire);
  if (!verified.ok()) {
    const StatusCode code = verified.status().code();
    if (code == StatusCode::kInvalidArgument || code == StatusCode::kNotFound) {
      return Unauthenticated();
    }
    return verified.status();
  }
  RefreshTokenRecord& record = *verified;
  if (record.revoked) {
    if (record.revoked_reason == RevokeReasonName(RevokeReason::kRotated)) {
      if (Status s = RevokeChainLocked(record, RevokeReason::kReplay); !s.ok()) return s;
    }
    return Unauthenticated();
  }
  if (clock_.Now() >= record.expires_at) {
    if (Status s = MarkRevokedLocked(record, RevokeReason::kExpired); !s.ok()) return s;
    return Unauthenticated();
  }
  return verified;
}

Result<IssuedRefreshToken> RefreshTokens::Rotate(const std::string& jti) {
  std::lock_guard lock(mutex_);
  auto loaded = LoadLocked(jti);
  if (!loaded.ok()) return loaded.status();
  if (!*loaded) return Unauthenticated();
  RefreshTokenRecord record = std::move(**loaded);
  if (record.revoked) {
    // Lost the race (or replayed): the whole chain goes, the winner's child included.
    if (Status s = RevokeChainLocked(record, RevokeReason::kReplay); !s.ok()) return s;
    return Unauthenticated();
  }
  const UnixMicros now = clock_.Now();
  if (now >= record.expires_at) {
    if (Status s = MarkRevokedLocked(record, RevokeReason::kExpired); !s.ok()) return s;
    return Unauthenticated();
  }
  record.last_used_at = now;
  if (Status s = MarkRevokedLocked(record, RevokeReason::kRotated); !s.ok()) return s;
  return IssueLocked(record.user_id, record.client_hint, record.jti);
}

Status RefreshTokens::Revoke(const std::string& jti, RevokeReason reason) {
  std::lock_guard lock(mutex_);
  auto loaded = LoadLocked(jti);
  if (!loaded.ok()) return loaded.status();
  if (!*loaded) return NotFound("refresh token not found");
  if ((*loaded)->revoked) return Status::Ok();
  return MarkRevokedLocked(std::move(**loaded), reason);
}

Status RefreshTokens::RevokeChain(const std::string& jti, RevokeReason reason) {
  std::lock_guard lock(mutex_);
  auto loaded = LoadLocked(jti);
  if (!loaded.ok()) return loaded.status();
  if (!*loaded) return NotFound("refresh token not found");
  return RevokeChainLocked(**loaded, reason);
}

Result<std::optional<RefreshTokenRecord>> RefreshTokens::Get(const std::string& jti) {
  if (jti.empty() || jti.size() > kMaxJtiBytes) return std::optional<RefreshTokenRecord>();
  std::lock_guard lock(mutex_);
  return LoadLocked(jti);
}

Result<std::vector<RefreshTokenRecord>> RefreshTokens::ListActive(const std::string& user_id) {
  std::lock_guard lock(mutex_);
  auto records = UserRecordsLocked(user_id);
  if (!records.ok()) return records.status();
  std::vector<RefreshTokenRecord> out;
  for (auto& r : *records) {
    if (!r.revoked) out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.issued_at != b.issued_at ? a.issued_at < b.issued_at : a.jti < b.jti;
  });
  return out;
}

Result<RefreshTokenRecord> RefreshTokens::VerifyLocked(std::string_view wire) {
  auto parsed = ParseRefreshToken(wire);
  if (!parsed) return InvalidArgument("malformed refresh token");
  if (parsed->jti.size() > kMaxJtiBytes) return NotFound("unknown refresh token");
  auto record = LoadLocked(parsed->jti);
  if (!record.ok()) return record.status();
  if (!*record || !ConstantTimeEquals((*record)->secret_hash, Sha256Hex(parsed->secret))) {
    return NotFound("unknown refresh token");
  }
  return std::move(**record);
}

Result<std::optional<RefreshTokenRecord>> RefreshTokens::LoadLocked(const std::string& jti) {
  auto raw = kv_.Get(TokenKey(jti));
  if (!raw.ok()) return raw.status();
  if (!*raw) return std::optional<RefreshTokenRecord>();
  auto record = Parse(**raw);
  if (!record) return Internal("corrupt refresh token record");
  return record;
}

Status RefreshTokens::StoreLocked(const RefreshTokenRecord& record) {
  return kv_.Put(TokenKey(record.jti), Serialize(record), record.expires_at + kGraceMicros);
}

Status RefreshTokens::MarkRevokedLocked(RefreshTokenRecord record, RevokeReason reason) {
  record.revoked = true;
  record.revoked_reason = RevokeReasonName(reason);
  return StoreLocked(record);
}

Status RefreshTokens::RevokeChainLocked(const RefreshTokenRecord& start, RevokeReason reason) {
  auto records = UserRecordsLocked(start.user_id);
  if (!records.ok()) return records.status();
  // Undirected parent links; a swept record still connects its neighbours through its jti.
  std::map<std::string, std::vector<std::string>> links;
  std::map<std::string, const RefreshTokenRecord*> by_jti;
  for (const auto& r : *records) {
    by_jti[r.jti] = &r;
    if (r.parent_jti) {
      links[r.jti].push_back(*r.parent_jti);
      links[*r.parent_jti].push_back(r.jti);
    }
  }
  if (start.parent_jti) {  // in case the index lost the start record
    links[start.jti].push_back(*start.parent_jti);
    links[*start.parent_jti].push_back(start.jti);
  }
  std::set<std::string> seen{start.jti};
  std::deque<std::string> queue{start.jti};
  while (!queue.empty()) {
    const std::string jti = std::move(queue.front());
    queue.pop_front();
    for (const auto& next : links[jti]) {
      if (seen.insert(next).second) queue.push_back(next);
    }
  }
  Status first_error;
  for (const auto& jti : seen) {
    auto it = by_jti.find(jti);
    RefreshTokenRecord record;
    if (it != by_jti.end()) {
      record = *it->second;
    } else if (jti == start.jti) {
      record = start;
    } else {
      continue;  // already swept
    }
    if (record.revoked) continue;
    if (Status s = MarkRevokedLocked(std::move(record), reason); !s.ok() && first_error.ok()) {
      first_error = s;
    }
  }
  return first_error;
}

Result<IssuedRefreshToken> RefreshTokens::IssueLocked(const std::string& user_id,
                                                      const std::string& client_hint,
                                                      std::optional<std::string> parent_jti) {
  const std::string secret = Base64UrlEncode(RandomBytes(32));
  RefreshTokenRecord record;
  record.jti = NewUuid4();
  record.user_id = user_id;
  record.secret_hash = Sha256Hex(secret);
  record.parent_jti = std::move(parent_jti);
  record.issued_at = clock_.Now();
  record.expires_at = record.issued_at + ttl_micros_;
  record.client_hint = client_hint;
  if (Status s = StoreLocked(record); !s.ok()) return s;

  auto index = IndexLocked(user_id);
  if (!index.ok()) return index.status();
  index->push_back(record.jti);
  if (Status s = StoreIndexLocked(user_id, *index); !s.ok()) return s;
  return IssuedRefreshToken{record.jti, record.jti + "." + secret};
}

Result<std::vector<RefreshTokenRecord>> RefreshTokens::UserRecordsLocked(
    const std::string& user_id) {
  auto index = IndexLocked(user_id);
  if (!index.ok()) return index.status();
  std::vector<RefreshTokenRecord> records;
  std::vector<std::string> kept;
  for (const auto& jti : *index) {
    auto record = LoadLocked(jti);
    if (!record.ok()) return record.status();
    if (!*record || (*record)->user_id != user_id) continue;
    kept.push_back(jti);
    records.push_back(std::move(**record));
  }
  if (kept.size() != index->size()) {
    if (Status s = StoreIndexLocked(user_id, kept); !s.ok()) return s;
  }
  return records;
}

Result<std::vector<std::string>> RefreshTokens::IndexLocked(const std::string& user_id) {
  auto raw = kv_.Get(UserKey(user_id));
  if (!raw.ok()) return raw.status();
  std::vector<std::string> jtis;
  if (!*raw) return jtis;
  boost::system::error_code ec;
  json::value v = json::parse(**raw, ec);
  if (ec || !v.is_array()) return Internal("corrupt refresh token index");
  for (const auto& item : v.get_array()) {
    if (item.is_string()) jtis.emplace_back(item.get_string());
  }
  return jtis;
}

Status RefreshTokens::StoreIndexLocked(const std::string& user_id,
                                       const std::vector<std::string>& jtis) {
  if (jtis.empty()) return kv_.Delete(UserKey(user_id));
  json::array arr;
  arr.reserve(jtis.size());
  for (const auto& jti : jtis) arr.emplace_back(jti);
  // Outlives every listed record: each was issued at most one TTL ago (with the same TTL).
  return kv_.Put(UserKey(user_id), json::serialize(arr),
                 clock_.Now() + ttl_micros_ + kGraceMicros);
}

}  // namespace magnetar::relay
