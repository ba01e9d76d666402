#include "auth/authenticator.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "auth/password.h"
#include "common/random.h"

namespace magnetar::auth {
namespace {

constexpr UnixMicros kMicrosPerSecond = 1'000'000;

// Characters as Python counts them (code points), assuming UTF-8.
size_t CodePoints(std::string_view s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

bool EqualsIgnoreAsciiCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string_view> ParseBearer(std::string_view authorization_header) {
  const size_t space = authorization_header.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  if (!EqualsIgnoreAsciiCase(authorization_header.substr(0, space), "bearer")) return std::nullopt;
  const std::string_view token = authorization_header.substr(space + 1);
  if (token.empty()) return std::nullopt;
  return token;
}

Authenticator::Authenticator(UserStore& users, const JwtCodec& jwt, core::KvStore& kv,
                             const Clock& clock, TokenRecords* both)
    : users_(users), jwt_(jwt), kv_(kv), clock_(clock), both_(both) {}

Result<AccessClaims> Authenticator::VerifySignature(std::string_view token) const {
  const int64_t now = clock_.NowSeconds();
  if (std::optional<AccessClaims> known = verified_.Find(token, now)) return *std::move(known);
  Result<AccessClaims> fresh = jwt_.Verify(token, now);
  if (fresh.ok()) verified_.Insert(token, *fresh);
  return fresh;
}

Result<AccessClaims> Authenticator::VerifyToken(std::string_view token) const {
  Result<AccessClaims> claims = VerifySignature(token);
  if (!claims.ok()) return claims.status();
  Result<bool> revoked = IsRevoked(claims->jti);
  if (!revoked.ok()) return revoked.status();
  if (*revoked) return Unauthenticated("Token has been revoked");
  return claims;
}

Result<User> Authenticator::RevocationAndUser(const AccessClaims& claims) const {
  if (both_ != nullptr) {
    const std::string deny_key = claims.jti.empty() ? "" : kDenyListKeyPrefix + claims.jti;
    Result<TokenRecords::Read> read = both_->ReadBoth(deny_key, claims.sub);
    if (!read.ok()) return read.status();
    if (read->revoked) return Unauthenticated("Token has been revoked");
    if (!read->user) return Unauthenticated("User not found");
    return *std::move(read->user);
  }
  Result<bool> revoked = IsRevoked(claims.jti);
  if (!revoked.ok()) return revoked.status();
  if (*revoked) return Unauthenticated("Token has been revoked");
  Result<User> user = users_.GetById(claims.sub);
  if (!user.ok() && user.status().code() == StatusCode::kNotFound) {
    return Unauthenticated("User not found");
  }
  return user;
}

Result<AuthContext> Authenticator::Authenticate(std::string_view token) const {
  Result<AccessClaims> claims = VerifySignature(token);
  if (!claims.ok()) return claims.status();
  Result<User> user = RevocationAndUser(*claims);
  if (!user.ok()) return user.status();
  if (!user->is_active) return PermissionDenied("User is inactive");
  return AuthContext{std::move(user).value(), std::move(claims).value()};
}

Status Authenticator::Require(const User& user, Permission p) {
  if (user.Has(p)) return Status::Ok();
  return PermissionDenied(std::string("Permission '") + PermissionName(p) + "' required");
}

Status Authenticator::Revoke(const AccessClaims& claims) {
  if (claims.jti.empty()) return Status::Ok();
  // exp is bounded so the conversion cannot overflow; the record outlives the token by < 1 s.
  const int64_t exp = std::clamp<int64_t>(claims.exp, 0, INT64_MAX / kMicrosPerSecond - 1);
  const UnixMicros expires_at = std::max(exp * kMicrosPerSecond, clock_.Now() + kMicrosPerSecond);
  return kv_.Put(kDenyListKeyPrefix + claims.jti, "logout", expires_at);
}

Result<bool> Authenticator::IsRevoked(const std::string& jti) const {
  if (jti.empty()) return false;
  Result<std::optional<std::string>> record = kv_.Get(kDenyListKeyPrefix + jti);
  if (!record.ok()) return record.status();
  return record->has_value();
}

Status EnsureBootstrapAdmin(UserStore& users, const Clock& clock, const std::string& username,
                            const std::string& password, const std::optional<std::string>& email) {
  Result<User> existing = users.GetByUsername(username);
  if (existing.ok()) {
    User& user = existing.value();
    if (!user.password_hash.empty() && VerifyPassword(password, user.password_hash)) {
      return Status::Ok();
    }
    std::string hash = HashPassword(password);
    if (hash.empty()) return Internal("Password hashing failed");
    user.password_hash = std::move(hash);
    return users.Update(user);
  }
  if (existing.status().code() != StatusCode::kNotFound) return existing.status();

  const size_t username_chars = CodePoints(username);
  if (username_chars < 3 || username_chars > 50) {
    return InvalidArgument("Bootstrap admin username must be 3-50 characters");
  }
  if (CodePoints(password) < 8) {
    return InvalidArgument("Bootstrap admin password must be at least 8 characters");
  }
  if (CodePoints(password) > kMaxPasswordChars) {
    return InvalidArgument("Bootstrap admin password must be at most " +
                           std::to_string(kMaxPasswordChars) + " characters");
  }
  User user;
  user.user_id = NewUuid4();
  user.username = username;
  user.email = email.has_value() ? *email : username + "@example.com";
  user.password_hash = HashPassword(password);
  if (user.password_hash.empty()) return Internal("Password hashing failed");
  user.is_active = true;
  user.created_at = clock.Now();
  user.permissions = {"admin", "read", "write"};
  return users.Create(user);
}

}  // namespace magnetar::auth
