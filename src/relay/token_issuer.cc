#include "relay/token_issuer.h"

#include "relay/json_util.h"

namespace magnetar::relay {

Result<TokenPair> TokenIssuer::Issue(const auth::User& user, const std::string& client_hint) {
  auto refresh = refresh_tokens_.Issue(user.user_id, client_hint);
  if (!refresh.ok()) return refresh.status();
  return WithRefreshToken(user, std::move(refresh->wire));
}

TokenPair TokenIssuer::WithRefreshToken(const auth::User& user, std::string refresh_token) const {
  TokenPair pair;
  pair.expires_in = int64_t{access_minutes_} * 60;
  pair.access_token =
      jwt_.Issue(auth::MakeAccessClaims(user, clock_.NowSeconds(), pair.expires_in));
  pair.refresh_token = std::move(refresh_token);
  return pair;
}

std::string TokenIssuer::ResponseJson(const TokenPair& pair) {
  std::string out = R"({"access_token":)";
  AppendJsonString(out, pair.access_token);
  out += R"(,"token_type":"bearer","expires_in":)";
  out += std::to_string(pair.expires_in);
  out += R"(,"refresh_token":)";
  AppendJsonString(out, pair.refresh_token);
  out += R"(,"refresh_token_secondary":null})";
  return out;
}

}  // namespace magnetar::relay
