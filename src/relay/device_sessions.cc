#include "relay/device_sessions.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>

#include "common/random.h"

namespace magnetar::relay {

namespace {

constexpr std::string_view kVersionPrefix = "v1.";

std::string SignOutKey(std::string_view sid) {
  return std::string(kDevicePageSignOutKeyPrefix) += sid;
}

bool IsHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return !s.empty();
}

}  // namespace

DevicePageSessions::DevicePageSessions(std::string session_key, std::string csrf_key,
                                       core::KvStore& kv, const Clock& clock,
                                       int lifetime_seconds)
    : session_key_(std::move(session_key)),
      csrf_key_(std::move(csrf_key)),
      kv_(kv),
      clock_(clock),
      lifetime_seconds_(lifetime_seconds) {}

std::string DevicePageSessions::Mac(std::string_view key, std::string_view input) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
           &mac_len) == nullptr) {
    return {};  // compared against a real MAC, an empty one never matches
  }
  return Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(mac), mac_len));
}

std::string DevicePageSessions::Issue(const std::string& user_id,
                                      DevicePageSession* session_out) const {
  DevicePageSession session;
  session.user_id = user_id;
  session.sid = RandomHex(16);
  session.expires_at_seconds = clock_.NowSeconds() + lifetime_seconds_;
  const std::string payload = user_id + "|" + session.sid + "|" +
                              std::to_string(session.expires_at_seconds);
  std::string signed_part = std::string(kVersionPrefix) + Base64UrlEncode(payload);
  std::string cookie = signed_part + "." + Mac(session_key_, signed_part);
  if (session_out) *session_out = std::move(session);
  return cookie;
}

Result<std::optional<DevicePageSession>> DevicePageSessions::Verify(
    std::string_view cookie) const {
  const std::optional<DevicePageSession> none;
  if (cookie.size() > kMaxDevicePageCookieBytes || !cookie.starts_with(kVersionPrefix)) {
    return none;
  }
  const size_t dot = cookie.rfind('.');
  if (dot <= kVersionPrefix.size()) return none;
  const std::string_view signed_part = cookie.substr(0, dot);
  const std::string_view mac = cookie.substr(dot + 1);
  if (!ConstantTimeEquals(Mac(session_key_, signed_part), mac)) return none;

  bool ok = false;
  const std::string payload = Base64UrlDecode(signed_part.substr(kVersionPrefix.size()), &ok);
  if (!ok) return none;
  const size_t bar1 = payload.find('|');
  const size_t bar2 = bar1 == std::string::npos ? bar1 : payload.find('|', bar1 + 1);
  if (bar2 == std::string::npos) return none;
  DevicePageSession session;
  session.user_id = payload.substr(0, bar1);
  session.sid = payload.substr(bar1 + 1, bar2 - bar1 - 1);
  const std::string_view exp = std::string_view(payload).substr(bar2 + 1);
  auto [end, ec] =
      std::from_chars(exp.data(), exp.data() + exp.size(), session.expires_at_seconds);
  if (ec != std::errc() || end != exp.data() + exp.size()) return none;
  if (session.user_id.empty() || !IsHex(session.sid)) return none;
  if (session.expires_at_seconds <= clock_.NowSeconds()) return none;

  auto signed_out = kv_.Get(SignOutKey(session.sid));
  if (!signed_out.ok()) return signed_out.status();
  if (signed_out->has_value()) return none;
  return std::optional<DevicePageSession>(std::move(session));
}

std::string DevicePageSessions::CsrfToken(const DevicePageSession& session) const {
  return Mac(csrf_key_, "csrf|" + session.sid + "|" + session.user_id);
}

bool DevicePageSessions::CsrfValid(const DevicePageSession& session,
                                   std::string_view token) const {
  if (token.empty()) return false;
  return ConstantTimeEquals(CsrfToken(session), token);
}

Status DevicePageSessions::SignOut(const DevicePageSession& session) const {
  return kv_.Put(SignOutKey(session.sid), "signed-out",
                 (session.expires_at_seconds + 1) * 1'000'000);
}

std::optional<std::string_view> FindCookie(std::string_view header, std::string_view name) {
  size_t i = 0;
  while (i < header.size()) {
    size_t end = header.find(';', i);
    if (end == std::string_view::npos) end = header.size();
    std::string_view pair = header.substr(i, end - i);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    while (!pair.empty() && pair.back() == ' ') pair.remove_suffix(1);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      std::string_view value = pair.substr(eq + 1);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      return value;
    }
    i = end + 1;
  }
  return std::nullopt;
}

}  // namespace magnetar::relay
