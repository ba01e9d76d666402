#include "relay/token_issuer.h"

#include <openssl/sha.h>

#include "common/random.h"
#include "common/time_format.h"
#include "relay/json_util.h"

namespace magnetar::relay {

Result<TokenPair> TokenIssuer::Issue(const auth::User& user, const std::string& client_hint) {
  const int64_t now_s = clock_.NowSeconds();
  TokenPair pair;
  pair.expires_in = int64_t{access_minutes_} * 60;
  pair.access_token = jwt_.Issue(auth::MakeAccessClaims(user, now_s, pair.expires_in));

  const std::string jti = NewUuid4();
  const std::string secret = Base64UrlEncode(RandomBytes(32));
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), digest);
  const UnixMicros now = clock_.Now();
  const UnixMicros expires = now + int64_t{refresh_days_} * 86400 * 1000000;
  json::object record;
  record["jti"] = jti;
  record["user_id"] = user.user_id;
  record["secret_hash"] = HexEncode(std::string_view(reinterpret_cast<char*>(digest), sizeof digest));
  record["parent_jti"] = nullptr;
  record["issued_at"] = FormatRfc3339(now);
  record["expires_at"] = FormatRfc3339(expires);
  record["last_used_at"] = nullptr;
  record["revoked"] = false;
  record["revoked_reason"] = nullptr;
  record["client_hint"] = client_hint;
  // Kept an hour past expiry so a late replay is still recognised as one.
  if (Status s = kv_.Put("refresh:tok:" + jti, json::serialize(record), expires + 3600LL * 1000000);
      !s.ok()) {
    return s;
  }
  pair.refresh_token = jti + "." + secret;
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
