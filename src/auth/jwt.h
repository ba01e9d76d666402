#pragma once

// Access tokens (relay spec §5.4): HS256 JWTs, compatible with the reference server's PyJWT
// tokens. A JwtCodec is immutable after construction, so one instance may be shared by every
// thread. Rotating the secret (a new JwtCodec) invalidates every outstanding token.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "auth/hmac_sha256.h"
#include "auth/user.h"
#include "common/status.h"

namespace magnetar::auth {

// The one message for every signature/shape/expiry failure (§0.3 step 2).
inline constexpr char kInvalidTokenMessage[] = "Invalid or expired token";

// Tokens longer than this are rejected without being looked at.
inline constexpr size_t kMaxTokenBytes = 8 * 1024;

// How far in the future `iat` and `nbf` may lie (clocks of cluster nodes differ a little). `exp`
// has no leeway, as in PyJWT.
inline constexpr int64_t kClockSkewSeconds = 60;

struct AccessClaims {
  std::string sub;  // user_id
  std::string username;
  std::vector<std::string> permissions;
  int64_t exp = 0;  // epoch seconds
  int64_t iat = 0;  // epoch seconds
  std::string jti;  // UUID4 hex (32 chars); may be empty for legacy tokens
};

class JwtCodec {
 public:
  // `secret` is the HMAC key (config `jwt_secret_key`); refusing weak secrets is the caller's job.
  explicit JwtCodec(std::string secret);

  // Header {"alg":"HS256","typ":"JWT"}; claims in the order sub, username, permissions, exp, iat,
  // jti (jti omitted when empty). Compact JSON, base64url without padding.
  std::string Issue(const AccessClaims& claims) const;

  // Checks, in any order (every failure is Unauthenticated("Invalid or expired token")):
  // length <= kMaxTokenBytes; three base64url segments; signature (constant-time); header alg is
  // HS256; exp > now_seconds (no leeway); iat and nbf (if present) not later than
  // now_seconds + kClockSkewSeconds (a token that is not valid yet is refused, as PyJWT does);
  // sub (non-empty string), username (string), exp and iat (JSON integers) present; nbf, if
  // present, a JSON integer; permissions, if present, an array of valid permission names; jti, if
  // present, a string; no "aud" claim.
  Result<AccessClaims> Verify(std::string_view token, int64_t now_seconds) const;

  // A 32-byte key for another signature than access tokens (e.g. browser session cookies):
  // HMAC-SHA256(secret, "magnetar key: " + purpose). Distinct purposes get unrelated keys, no key
  // can sign an access token, and rotating the secret rotates every derived key with it.
  std::string DeriveKey(std::string_view purpose) const;

 private:
  // Base64url (unpadded) HMAC-SHA256 of `signing_input` under the secret.
  std::string Sign(std::string_view signing_input) const;

  // The secret's HMAC key schedule, computed once; the secret itself is not kept.
  const HmacSha256Key key_;
};

// Claims for a fresh access token: exp = now + lifetime, iat = now, jti = NewUuid4Hex().
AccessClaims MakeAccessClaims(const User& user, int64_t now_seconds, int64_t lifetime_seconds);

}  // namespace magnetar::auth
