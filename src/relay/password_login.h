#pragma once

// The password check of a sign-in (spec §1.3), shared by every route that takes a username and a
// password: POST /auth/login and the device verification page's sign-in. Argon2id through
// auth::VerifyPassword, with the same cost whether the user exists, has a local password or
// not, so the time taken tells nothing about the account. BLOCKING (~0.1 s of CPU): run it on the
// blocking pool, never on an I/O thread.

#include <string>
#include <string_view>

#include "auth/user.h"
#include "auth/user_store.h"

namespace magnetar::relay {

struct PasswordLogin {
  enum class Kind { kOk, kBadCredentials, kInactive, kError } kind = Kind::kError;
  auth::User user;  // kOk and kInactive
};

PasswordLogin CheckPasswordLogin(auth::UserStore& users, const std::string& username,
                                 std::string_view password);

}  // namespace magnetar::relay
