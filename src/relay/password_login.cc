#include "relay/password_login.h"

#include <algorithm>

#include "auth/password.h"
#include "common/random.h"
#include "relay/auth_metrics.h"

namespace magnetar::relay {

namespace {

// A real hash to verify against when there is none to check, so every path costs the same.
const std::string& DummyHash() {
  static const std::string hash = auth::HashPassword(RandomHex(16));
  return hash;
}

size_t CodePoints(std::string_view s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

PasswordLogin Check(auth::UserStore& users, const std::string& username,
                    std::string_view password);

}  // namespace

PasswordLogin CheckPasswordLogin(auth::UserStore& users, const std::string& username,
                                 std::string_view password) {
  PasswordLogin out = Check(users, username, password);
  if (out.kind == PasswordLogin::Kind::kBadCredentials) CountAuthFailure("bad_credentials");
  if (out.kind == PasswordLogin::Kind::kInactive) CountAuthFailure("inactive_user");
  return out;
}

namespace {

PasswordLogin Check(auth::UserStore& users, const std::string& username,
                    std::string_view password) {
  PasswordLogin out;
  // No user can have a longer password: refused without spending a hash on it.
  if (CodePoints(password) > auth::kMaxPasswordChars) {
    out.kind = PasswordLogin::Kind::kBadCredentials;
    return out;
  }
  auto user = users.GetByUsername(username);
  if (!user.ok()) {
    out.kind = user.status().code() == StatusCode::kNotFound ? PasswordLogin::Kind::kBadCredentials
                                                             : PasswordLogin::Kind::kError;
    auth::VerifyPassword(password, DummyHash());
    return out;
  }
  const std::string& hash = user->password_hash.empty() ? DummyHash() : user->password_hash;
  if (!auth::VerifyPassword(password, hash) || user->password_hash.empty()) {
    out.kind = PasswordLogin::Kind::kBadCredentials;
    return out;
  }
  out.kind = user->is_active ? PasswordLogin::Kind::kOk : PasswordLogin::Kind::kInactive;
  out.user = std::move(user).value();
  return out;
}

}  // namespace

}  // namespace magnetar::relay
