#pragma once

// Request authentication (relay spec §0.3 steps 2-6) and the JWT deny-list (§5.5), plus the
// bootstrap admin (§5.3). An Authenticator holds references to thread-safe collaborators and a
// thread-safe memo of verified tokens, so one instance may be shared by every thread; the
// referenced store, codec, key/value store and clock must outlive it. Users and the deny-list are
// read on every call (no cache), so admin changes (deactivate, permissions, delete) and logouts
// apply on the next request (D10, D12); only a token's signature check is memoised.

#include <optional>
#include <string>
#include <string_view>

#include "auth/jwt.h"
#include "auth/token_records.h"
#include "auth/user.h"
#include "auth/user_store.h"
#include "auth/verified_token_cache.h"
#include "common/clock.h"
#include "common/status.h"
#include "core/kv_store.h"

namespace magnetar::auth {

// Deny-list records live in the KvStore under this prefix followed by the token's jti.
inline constexpr char kDenyListKeyPrefix[] = "denylist:jti:";

struct AuthContext {
  User user;            // the stored user (authorization uses its permissions, not the claim's)
  AccessClaims claims;  // the verified token
};

// "Bearer <token>" with a case-insensitive scheme, split at the first space. nullopt when the
// header is missing (empty), has another scheme, or carries an empty token.
std::optional<std::string_view> ParseBearer(std::string_view authorization_header);

class Authenticator {
 public:
  // `both`: reads the deny-list record and the user at once (Redis); null: one after the other.
  Authenticator(UserStore& users, const JwtCodec& jwt, core::KvStore& kv, const Clock& clock,
                TokenRecords* both = nullptr);

  // §0.3 steps 2-3 only (no user lookup; what POST /auth/logout needs):
  //   Unauthenticated("Invalid or expired token"), Unauthenticated("Token has been revoked").
  // A deny-list read failure is returned as is (e.g. Unavailable): never fails open.
  Result<AccessClaims> VerifyToken(std::string_view token) const;

  // §0.3 steps 2-5, in that order:
  //   Unauthenticated("Invalid or expired token"), Unauthenticated("Token has been revoked"),
  //   Unauthenticated("User not found"), PermissionDenied("User is inactive").
  // Storage failures are returned as they come (e.g. Unavailable).
  Result<AuthContext> Authenticate(std::string_view token) const;

  // PermissionDenied("Permission '<name>' required") unless `user` has `p` (§0.3 step 6).
  static Status Require(const User& user, Permission p);

  // Puts the token's jti on the deny-list ("denylist:jti:<jti>" = "logout") until the token's
  // exp (at least one second from now). No-op for an empty jti (legacy token).
  Status Revoke(const AccessClaims& claims);

  // True when `jti` is on the deny-list. False for an empty jti.
  Result<bool> IsRevoked(const std::string& jti) const;

 private:
  // The signature and claims (memoised), without the deny-list.
  Result<AccessClaims> VerifySignature(std::string_view token) const;
  // §0.3 steps 3-4 for verified claims: the deny-list record and the user.
  Result<User> RevocationAndUser(const AccessClaims& claims) const;

  UserStore& users_;
  const JwtCodec& jwt_;
  core::KvStore& kv_;
  const Clock& clock_;
  TokenRecords* const both_;
  mutable VerifiedTokenCache verified_;
};

// Bootstrap admin (§5.3). Absent user: created with permissions ["admin","read","write"], a new
// UUID4 id, `email` or "<username>@example.com"; the UserCreate rules apply (username 3-50
// characters, password at least 8) and a violation returns InvalidArgument without creating
// anything. Present user: if `password` no longer verifies against the stored hash (or there is no
// hash) it is re-hashed and saved; permissions are not re-asserted. Returns the status for the
// caller to log (never fatal). Hashes a password: do not call on an I/O thread.
Status EnsureBootstrapAdmin(UserStore& users, const Clock& clock, const std::string& username,
                            const std::string& password, const std::optional<std::string>& email);

}  // namespace magnetar::auth
