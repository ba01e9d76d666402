#pragma once

// The HTML of the device verification page (/auth/device, spec §5.7 with Magnetar's sign-in and
// approve/deny): small pure functions from what to show to a complete, self-contained document
// (inline CSS, no scripts, no external resources), plus the security headers every such response
// carries. Everything that came from a client (the client hint, a typed username or code) is
// HTML-escaped here, at the one place where it meets markup.

#include <optional>
#include <string>
#include <string_view>

#include "http/types.h"
#include "relay/device_codes.h"

namespace magnetar::relay {

// & < > " ' as character references; everything else unchanged.
std::string HtmlEscape(std::string_view text);

// The Content-Security-Policy of every page: nothing may load or run but the page's own
// stylesheet (allowed by its hash), forms post only to this origin, no framing.
const std::string& DevicePageCsp();

// An HTML response with the security headers: Content-Security-Policy, X-Frame-Options DENY,
// Cache-Control no-store, Referrer-Policy same-origin, X-Content-Type-Options nosniff.
http::Response DevicePageResponse(unsigned status, std::string html);

struct DevicePageUser {
  std::string username;
  std::string csrf_token;
};

// No code yet: a form asking for it (GET /auth/device?user_code=...). `typed` is shown again
// after a mistake, with `error`.
std::string EnterCodePage(const std::optional<DevicePageUser>& user,
                          std::optional<std::string_view> error = std::nullopt,
                          std::string_view typed = {});

// 404: the code is unknown, used, denied or expired.
std::string CodeNotRecognisedPage();

// A pending code and nobody signed in: what asks for access, and a sign-in form that posts to
// /auth/device/login. `error` after a failed attempt; `username` is kept in the field.
std::string SignInPage(const DeviceRecord& record, UnixMicros now,
                       std::optional<std::string_view> error = std::nullopt,
                       std::string_view username = {});

// A pending code and a signed-in user: the request, and Approve / Deny / Sign out forms that
// each carry the user code and the session's anti-CSRF token.
std::string ApprovePage(const DeviceRecord& record, const DevicePageUser& user, UnixMicros now);

// After a decision.
std::string ApprovedPage(std::string_view username);
std::string DeniedPage();

// Anything else (sign-in expired, refused request, too many attempts, server error): a title, a
// sentence and a way back to the start.
std::string MessagePage(std::string_view title, std::string_view message,
                        std::string_view back_href = "/auth/device");

}  // namespace magnetar::relay
