#pragma once

// DevicePageSessions: the browser sign-in of the device verification page (/auth/device) and its
// anti-CSRF tokens.
//
// The session cookie holds a short-lived signed token, never a password and never an access
// token: "v1.<base64url payload>.<base64url HMAC-SHA256>", payload "<user_id>|<sid>|<exp>", where
// sid is 16 random bytes (hex) naming this sign-in and exp its end (epoch seconds). The MAC key is
// derived from the JWT secret for this purpose alone, so the cookie cannot be replayed as a bearer
// token and every node sharing the secret accepts it. Signing out puts the sid on a deny-list in
// the KvStore until exp, so a copied cookie dies with the sign-out.
//
// The anti-CSRF token of a session is base64url(HMAC-SHA256(csrf key, "csrf|" + sid + "|" + user)):
// bound to that one sign-in, unguessable without the key, checked in constant time. A page
// embeds it in a hidden field of each POST form; a cross-site form cannot know it.
//
// Thread-safety: immutable apart from the KvStore, which is thread-safe; share one instance.

#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "core/kv_store.h"

namespace magnetar::relay {

inline constexpr char kDevicePageCookie[] = "magnetar_device_session";
inline constexpr char kDevicePageCookiePath[] = "/auth/device";
inline constexpr char kDevicePageSignOutKeyPrefix[] = "device:signout:";
// A cookie value longer than this is not looked at.
inline constexpr size_t kMaxDevicePageCookieBytes = 512;

struct DevicePageSession {
  std::string user_id;
  std::string sid;
  int64_t expires_at_seconds = 0;
};

class DevicePageSessions {
 public:
  // `session_key` signs cookies, `csrf_key` makes anti-CSRF tokens (distinct keys, see
  // auth::JwtCodec::DeriveKey). `lifetime_seconds` bounds a sign-in.
  DevicePageSessions(std::string session_key, std::string csrf_key, core::KvStore& kv,
                     const Clock& clock, int lifetime_seconds);

  int lifetime_seconds() const { return lifetime_seconds_; }

  // A new sign-in of `user_id`: the cookie value (secret: never log it).
  std::string Issue(const std::string& user_id, DevicePageSession* session_out = nullptr) const;

  // The session of a cookie value whose signature checks (constant-time), that has not expired
  // and was not signed out; nullopt otherwise. Unavailable when the sign-out list cannot be read
  // (never fails open).
  Result<std::optional<DevicePageSession>> Verify(std::string_view cookie) const;

  std::string CsrfToken(const DevicePageSession& session) const;
  // Constant-time comparison with the session's token; false for an empty or wrong token.
  bool CsrfValid(const DevicePageSession& session, std::string_view token) const;

  // Ends the sign-in everywhere: its sid is refused until the cookie would have expired.
  Status SignOut(const DevicePageSession& session) const;

 private:
  std::string Mac(std::string_view key, std::string_view input) const;

  const std::string session_key_;
  const std::string csrf_key_;
  core::KvStore& kv_;
  const Clock& clock_;
  const int lifetime_seconds_;
};

// The value of cookie `name` in a Cookie request header ("a=1; b=2"), or nullopt. Bounded: the
// header is scanned once.
std::optional<std::string_view> FindCookie(std::string_view cookie_header, std::string_view name);

}  // namespace magnetar::relay
