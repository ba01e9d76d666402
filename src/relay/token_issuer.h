#pragma once

// Issues the token pair of a successful login (spec §1.3, §5.4, §5.6): an HS256 access token and
// a refresh token "<jti>.<secret>" whose record (only sha256 of the secret) goes to the KvStore.

#include <string>

#include "auth/jwt.h"
#include "auth/user.h"
#include "common/clock.h"
#include "core/kv_store.h"

namespace magnetar::relay {

struct TokenPair {
  std::string access_token;
  int64_t expires_in = 0;
  std::string refresh_token;
};

class TokenIssuer {
 public:
  TokenIssuer(const auth::JwtCodec& jwt, core::KvStore& kv, const Clock& clock,
              int access_minutes, int refresh_days)
      : jwt_(jwt), kv_(kv), clock_(clock), access_minutes_(access_minutes),
        refresh_days_(refresh_days) {}

  Result<TokenPair> Issue(const auth::User& user, const std::string& client_hint);
  // The TokenResponse body: access_token, token_type, expires_in, refresh_token,
  // refresh_token_secondary (null).
  static std::string ResponseJson(const TokenPair& pair);

 private:
  const auth::JwtCodec& jwt_;
  core::KvStore& kv_;
  const Clock& clock_;
  int access_minutes_;
  int refresh_days_;
};

}  // namespace magnetar::relay
