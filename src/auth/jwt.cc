#include "auth/jwt.h"

#include <openssl/crypto.h>

#include <boost/json.hpp>
#include <optional>
#include <utility>

#include "common/random.h"

namespace magnetar::auth {
namespace {

namespace json = boost::json;

// PyJWT's default header (keys sorted), the only one Issue writes.
constexpr std::string_view kHeaderJson = R"({"alg":"HS256","typ":"JWT"})";

Status InvalidToken() { return Unauthenticated(kInvalidTokenMessage); }

bool IsBase64UrlSegment(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

// Decodes one segment and parses it as a JSON object; nullopt on any failure.
std::optional<json::object> DecodeJsonObject(std::string_view segment) {
  bool ok = false;
  const std::string text = Base64UrlDecode(segment, &ok);
  if (!ok) return std::nullopt;
  boost::system::error_code ec;
  json::value value = json::parse(text, ec);
  if (ec || !value.is_object()) return std::nullopt;
  return std::move(value.as_object());
}

// A JSON integer that fits int64_t (floats, strings and booleans are not integers).
std::optional<int64_t> AsInt64(const json::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(v->get_uint64());
  }
  return std::nullopt;
}

const json::string* AsString(const json::value* v) {
  return v != nullptr && v->is_string() ? &v->get_string() : nullptr;
}

}  // namespace

JwtCodec::JwtCodec(std::string secret) : key_(secret) {
  OPENSSL_cleanse(secret.data(), secret.size());  // our copy; the key schedule is all we keep
}

std::string JwtCodec::Sign(std::string_view signing_input) const {
  return Base64UrlEncode(key_.SignToString(signing_input));
}

std::string JwtCodec::DeriveKey(std::string_view purpose) const {
  std::string input = "magnetar key: ";
  input += purpose;
  return key_.SignToString(input);
}

std::string JwtCodec::Issue(const AccessClaims& claims) const {
  json::object payload;
  payload["sub"] = claims.sub;
  payload["username"] = claims.username;
  json::array permissions;
  for (const std::string& p : claims.permissions) permissions.emplace_back(p);
  payload["permissions"] = std::move(permissions);
  payload["exp"] = claims.exp;
  payload["iat"] = claims.iat;
  if (!claims.jti.empty()) payload["jti"] = claims.jti;

  std::string token = Base64UrlEncode(kHeaderJson);
  token.push_back('.');
  token += Base64UrlEncode(json::serialize(payload));
  std::string signature = Sign(token);
  token.push_back('.');
  token += signature;
  return token;
}

Result<AccessClaims> JwtCodec::Verify(std::string_view token, int64_t now_seconds) const {
  if (token.size() > kMaxTokenBytes) return InvalidToken();
  const size_t dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return InvalidToken();
  const size_t dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos) return InvalidToken();
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature_b64 = token.substr(dot2 + 1);
  if (!IsBase64UrlSegment(header_b64) || !IsBase64UrlSegment(payload_b64) ||
      !IsBase64UrlSegment(signature_b64)) {
    return InvalidToken();  // also rejects a third '.'
  }

  // Signature first: nothing from an unauthenticated token is parsed. Comparing the canonical
  // encodings also rejects non-canonical spellings of the right MAC.
  const std::string expected = Sign(token.substr(0, dot2));
  if (!ConstantTimeEquals(expected, signature_b64)) return InvalidToken();

  const std::optional<json::object> header = DecodeJsonObject(header_b64);
  if (!header) return InvalidToken();
  const json::string* alg = AsString(header->if_contains("alg"));
  if (alg == nullptr || *alg != "HS256") return InvalidToken();

  const std::optional<json::object> payload = DecodeJsonObject(payload_b64);
  if (!payload) return InvalidToken();
  if (payload->contains("aud")) return InvalidToken();

  AccessClaims claims;
  const json::string* sub = AsString(payload->if_contains("sub"));
  const json::string* username = AsString(payload->if_contains("username"));
  const std::optional<int64_t> exp = AsInt64(payload->if_contains("exp"));
  const std::optional<int64_t> iat = AsInt64(payload->if_contains("iat"));
  if (sub == nullptr || sub->empty() || username == nullptr || !exp || !iat) return InvalidToken();
  if (*exp <= now_seconds) return InvalidToken();
  // Not valid yet: issued (or usable) only in the future, beyond the clock skew we tolerate.
  if (*iat > now_seconds + kClockSkewSeconds) return InvalidToken();
  if (const json::value* nbf_value = payload->if_contains("nbf")) {
    const std::optional<int64_t> nbf = AsInt64(nbf_value);
    if (!nbf || *nbf > now_seconds + kClockSkewSeconds) return InvalidToken();
  }
  claims.sub.assign(sub->data(), sub->size());
  claims.username.assign(username->data(), username->size());
  claims.exp = *exp;
  claims.iat = *iat;

  if (const json::value* permissions = payload->if_contains("permissions")) {
    if (!permissions->is_array()) return InvalidToken();
    for (const json::value& p : permissions->get_array()) {
      if (!p.is_string()) return InvalidToken();
      const std::string_view name(p.get_string().data(), p.get_string().size());
      if (!ParsePermission(name)) return InvalidToken();
      claims.permissions.emplace_back(name);
    }
  }
  if (const json::value* jti = payload->if_contains("jti")) {
    if (!jti->is_string()) return InvalidToken();
    claims.jti.assign(jti->get_string().data(), jti->get_string().size());
  }
  return claims;
}

AccessClaims MakeAccessClaims(const User& user, int64_t now_seconds, int64_t lifetime_seconds) {
  AccessClaims claims;
  claims.sub = user.user_id;
  claims.username = user.username;
  claims.permissions = user.permissions;
  claims.exp = now_seconds + lifetime_seconds;
  claims.iat = now_seconds;
  claims.jti = NewUuid4Hex();
  return claims;
}

}  // namespace magnetar::auth
