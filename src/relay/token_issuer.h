#pragma once

// TokenIssuer: the TokenResponse of a successful sign-in or refresh (spec §1.3, §1.11, §5.4, §5.6):
// an HS256 access token, plus a refresh token "<jti>.<secret>" minted through RefreshTokens (which
// keeps the record). Holds only references; cheap to build per request, usable from any thread as
// long as the codec, RefreshTokens and clock outlive it.

#include <string>

#include "auth/jwt.h"
#include "auth/user.h"
#include "common/clock.h"
#include "relay/refresh_tokens.h"

namespace magnetar::relay {

struct TokenPair {
  std::string access_token;
  int64_t expires_in = 0;
  std::string refresh_token;
};

class TokenIssuer {
 public:
  TokenIssuer(const auth::JwtCodec& jwt, RefreshTokens& refresh_tokens, const Clock& clock,
              int access_minutes)
      : jwt_(jwt), refresh_tokens_(refresh_tokens), clock_(clock),
        access_minutes_(access_minutes) {}

  // A fresh access token and a new, independent refresh token (no parent) for `user`.
  Result<TokenPair> Issue(const auth::User& user, const std::string& client_hint);
  // A fresh access token next to a refresh token issued elsewhere (e.g. by a rotation).
  TokenPair WithRefreshToken(const auth::User& user, std::string refresh_token) const;

  // The TokenResponse body: access_token, token_type, expires_in, refresh_token,
  // refresh_token_secondary (null).
  static std::string ResponseJson(const TokenPair& pair);

 private:
  const auth::JwtCodec& jwt_;
  RefreshTokens& refresh_tokens_;
  const Clock& clock_;
  int access_minutes_;
};

}  // namespace magnetar::relay
