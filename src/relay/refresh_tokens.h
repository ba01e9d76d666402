#pragma once

// RefreshTokens: the refresh-token records of the relay API (spec §1.11-§1.14, §5.6): issue,
// single-use rotation with replay detection, revocation (one token or its whole chain) and the
// per-user session list.
//
// Storage. Records live in the engine's KvStore as JSON under "refresh:tok:<jti>" (jti, user_id,
// secret_hash, parent_jti, issued_at, expires_at, last_used_at, revoked, revoked_reason,
// client_hint); only sha256(secret) is kept. A record outlives its expiry by an hour so a late
// replay is still recognised. "refresh:user:<user_id>" holds the JSON list of the user's jtis;
// entries whose record has gone are pruned when the list is read.
//
// A chain is the connected component of the parent_jti graph among one user's tokens (edges are
// followed even through records that have already been swept). Replaying a rotated token, or
// losing a rotation race, revokes every live member with reason "replay". Independently issued
// tokens have no parent link and never affect each other.
//
// Thread-safety: every public method may be called from any thread. Each one runs its whole
// read-modify-write under one mutex, which is what makes rotation an atomic check-and-set:
// exactly one of several concurrent rotations of the same token wins, and the losers revoke the
// chain, including the winner's child (which is always written before the mutex is released, so
// the outcome does not depend on timing as it does in the reference). The KvStore has no
// compare-and-set, so this only holds within one process: an engine shared by several nodes
// (Redis) needs a real CAS on the record's `revoked` field (a Lua script, as the reference uses)
// before it can back this class.
//
// Lifecycle: the KvStore and the Clock must outlive the object.

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "core/kv_store.h"

namespace magnetar::relay {

inline constexpr char kRefreshTokenKeyPrefix[] = "refresh:tok:";
inline constexpr char kRefreshUserKeyPrefix[] = "refresh:user:";
// The one message for every refresh failure the client may not tell apart (§1.11).
inline constexpr char kInvalidRefreshToken[] = "invalid refresh token";

enum class RevokeReason { kRotated, kLogout, kReplay, kAdmin, kExpired };
// "rotated" / "logout" / "replay" / "admin" / "expired".
const char* RevokeReasonName(RevokeReason reason);

struct RefreshTokenRecord {
  std::string jti;          // UUID4 with hyphens
  std::string user_id;
  std::string secret_hash;  // lower-case hex sha256 of the wire secret
  std::optional<std::string> parent_jti;
  UnixMicros issued_at = 0;
  UnixMicros expires_at = 0;
  std::optional<UnixMicros> last_used_at;
  bool revoked = false;
  std::optional<std::string> revoked_reason;
  std::string client_hint;
};

// SessionInfo (spec §1.13): jti, issued_at, expires_at, last_used_at (null until used),
// client_hint. Defined in token_routes.cc.
void AppendSessionJson(std::string& out, const RefreshTokenRecord& r);

// The two halves of a wire token "<jti>.<secret>", split at the first '.'. nullopt when there is
// no '.' or either half is empty (the reference's "malformed").
struct WireRefreshToken {
  std::string jti;
  std::string secret;
};
std::optional<WireRefreshToken> ParseRefreshToken(std::string_view wire);

struct IssuedRefreshToken {
  std::string jti;
  std::string wire;  // "<jti>.<secret>": hand to the client, never log
};

class RefreshTokens {
 public:
  RefreshTokens(core::KvStore& kv, const Clock& clock, int ttl_days);

  RefreshTokens(const RefreshTokens&) = delete;
  RefreshTokens& operator=(const RefreshTokens&) = delete;

  // A new token with no parent: jti = UUID4, secret = 32 random bytes base64url (43 chars),
  // expires ttl_days from now.
  Result<IssuedRefreshToken> Issue(const std::string& user_id, const std::string& client_hint);

  // The record behind a wire token whose secret matches (constant-time). InvalidArgument for a
  // malformed token, NotFound for an unknown jti or a wrong secret. No side effects.
  Result<RefreshTokenRecord> Verify(std::string_view wire);

  // Step one of POST /auth/token/refresh: the record, if it may be rotated. Otherwise
  // Unauthenticated(kInvalidRefreshToken) for a malformed, unknown, wrong-secret, revoked or
  // expired token; replaying a rotated token first revokes its chain ("replay"), an expired one is
  // marked revoked ("expired"). The caller then checks the owner and calls Rotate().
  Result<RefreshTokenRecord> CheckForRefresh(std::string_view wire);

  // Step two: the atomic check-and-set "not revoked -> revoked (rotated)" on `jti`, then a child
  // token (parent_jti = jti, same client_hint, a fresh full TTL). If the token is no longer
  // rotatable (a concurrent rotation won, or it was revoked or expired meanwhile) the chain is
  // revoked ("replay", or only the token is marked "expired") and the result is
  // Unauthenticated(kInvalidRefreshToken).
  Result<IssuedRefreshToken> Rotate(const std::string& jti);

  // Marks one token revoked. Already revoked: unchanged (the first reason stays). NotFound when
  // the record does not exist.
  Status Revoke(const std::string& jti, RevokeReason reason);

  // Revokes every live token of `jti`'s chain. NotFound when the record does not exist.
  Status RevokeChain(const std::string& jti, RevokeReason reason);

  // The record, or nullopt.
  Result<std::optional<RefreshTokenRecord>> Get(const std::string& jti);

  // The user's tokens that are not revoked (expired ones included until they are touched or
  // swept), oldest first.
  Result<std::vector<RefreshTokenRecord>> ListActive(const std::string& user_id);

 private:
  Result<RefreshTokenRecord> VerifyLocked(std::string_view wire);
  Result<std::optional<RefreshTokenRecord>> LoadLocked(const std::string& jti);
  Status StoreLocked(const RefreshTokenRecord& record);
  Status MarkRevokedLocked(RefreshTokenRecord record, RevokeReason reason);
  Status RevokeChainLocked(const RefreshTokenRecord& start, RevokeReason reason);
  Result<IssuedRefreshToken> IssueLocked(const std::string& user_id,
                                         const std::string& client_hint,
                                         std::optional<std::string> parent_jti);
  // Every stored record of the user, pruning index entries whose record has gone.
  Result<std::vector<RefreshTokenRecord>> UserRecordsLocked(const std::string& user_id);
  Result<std::vector<std::string>> IndexLocked(const std::string& user_id);
  // Expires one TTL (plus the grace hour) from now: after every record it lists, as long as the
  // TTL option has not been lowered since they were issued.
  Status StoreIndexLocked(const std::string& user_id, const std::vector<std::string>& jtis);

  core::KvStore& kv_;
  const Clock& clock_;
  const int64_t ttl_micros_;
  std::mutex mutex_;  // serialises every read-modify-write of records and indexes
};

}  // namespace magnetar::relay
