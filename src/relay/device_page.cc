#include "relay/device_page.h"

#include <openssl/sha.h>

#include "common/random.h"
#include "common/time_format.h"

namespace magnetar::relay {

namespace {

// One stylesheet for every page, allowed by its hash in the CSP (no 'unsafe-inline', and no
// style="" attributes anywhere: the hash does not cover them).
constexpr std::string_view kCss =
    ":root{color-scheme:light dark;--bg1:#eef2ff;--bg2:#fdf2f8;--card:#fff;--ink:#1f2937;"
    "--muted:#6b7280;--line:#e5e7eb;--accent:#4f46e5;--accent-ink:#fff;--ok:#059669;"
    "--bad:#dc2626;--code-bg:#f3f4f6}"
    "@media (prefers-color-scheme:dark){:root{--bg1:#0f172a;--bg2:#1e1b4b;--card:#111827;"
    "--ink:#f3f4f6;--muted:#9ca3af;--line:#374151;--accent:#818cf8;--accent-ink:#0b1020;"
    "--ok:#34d399;--bad:#f87171;--code-bg:#1f2937}}"
    "*{box-sizing:border-box}"
    "body{margin:0;min-height:100vh;display:flex;flex-direction:column;align-items:center;"
    "justify-content:center;padding:24px;font:16px/1.5 system-ui,-apple-system,'Segoe UI',"
    "Roboto,'Helvetica Neue',Arial,sans-serif;color:var(--ink);"
    "background:linear-gradient(135deg,var(--bg1),var(--bg2))}"
    ".card{width:100%;max-width:440px;background:var(--card);border:1px solid var(--line);"
    "border-radius:16px;padding:32px;box-shadow:0 10px 30px rgba(17,24,39,.12)}"
    ".brand{display:flex;align-items:center;gap:10px;font-weight:600;letter-spacing:.02em;"
    "color:var(--muted);margin-bottom:20px}"
    ".brand svg{width:28px;height:28px}"
    "h1{font-size:1.5rem;line-height:1.25;margin:0 0 8px}"
    "p{margin:0 0 16px}"
    ".muted{color:var(--muted)}"
    ".code{display:block;text-align:center;font:600 2rem/1.2 ui-monospace,SFMono-Regular,"
    "Menlo,Consolas,monospace;letter-spacing:.15em;padding:14px;margin:8px 0 20px;"
    "background:var(--code-bg);border:1px dashed var(--line);border-radius:12px}"
    "dl{display:grid;grid-template-columns:auto 1fr;gap:6px 16px;margin:0 0 20px;"
    "font-size:.95rem}"
    "dt{color:var(--muted)}"
    "dd{margin:0;overflow-wrap:anywhere}"
    "label{display:block;font-weight:600;font-size:.9rem;margin:12px 0 6px}"
    "input[type=text],input[type=password]{width:100%;padding:10px 12px;font:inherit;"
    "color:inherit;background:transparent;border:1px solid var(--line);border-radius:10px}"
    "input:focus{outline:2px solid var(--accent);outline-offset:1px}"
    "input.code-input{text-transform:uppercase;text-align:center;font:600 1.4rem "
    "ui-monospace,monospace;letter-spacing:.12em}"
    "button{width:100%;padding:11px 16px;margin-top:16px;font:600 1rem system-ui,sans-serif;"
    "border-radius:10px;border:1px solid transparent;cursor:pointer}"
    ".primary{background:var(--accent);color:var(--accent-ink)}"
    ".approve{background:var(--ok);color:#fff}"
    ".deny{background:transparent;color:var(--bad);border-color:var(--bad)}"
    ".actions{display:grid;grid-template-columns:1fr 1fr;gap:12px}"
    ".actions form{margin:0}"
    ".actions button{margin-top:0}"
    ".link{background:none;border:0;padding:0;margin:0;width:auto;color:var(--accent);"
    "font-weight:500;text-decoration:underline}"
    ".notice{padding:10px 12px;border-radius:10px;margin:0 0 16px;font-size:.95rem}"
    ".error{background:rgba(220,38,38,.1);color:var(--bad)}"
    ".info{background:rgba(79,70,229,.1)}"
    ".who{display:flex;justify-content:space-between;align-items:center;gap:12px;"
    "padding-top:16px;margin-top:20px;border-top:1px solid var(--line);font-size:.9rem;"
    "color:var(--muted)}"
    ".who form{margin:0}"
    ".result{font-size:3rem;line-height:1;margin-bottom:12px}"
    ".result.ok{color:var(--ok)}"
    ".result.bad{color:var(--bad)}"
    "footer{margin-top:16px;font-size:.8rem;color:var(--muted)}";

// A small ringed star: the brand mark, inline so nothing is fetched.
constexpr std::string_view kLogo =
    R"(<svg viewBox="0 0 32 32" aria-hidden="true"><circle cx="16" cy="16" r="13" fill="none" )"
    R"(stroke="#818cf8" stroke-width="2" stroke-dasharray="4 3"/><path d="M16 5l2.6 8.4L27 16)"
    R"(l-8.4 2.6L16 27l-2.6-8.4L5 16l8.4-2.6z" fill="#4f46e5"/></svg>)";

std::string Base64Std(std::string_view bytes) {
  std::string s = Base64UrlEncode(bytes);
  for (char& c : s) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (s.size() % 4) s.push_back('=');
  return s;
}

std::string Layout(std::string_view title, std::string_view body) {
  std::string out;
  out.reserve(kCss.size() + body.size() + 1024);
  out += "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
         "<meta name=\"robots\" content=\"noindex\">"
         "<link rel=\"icon\" href=\"data:,\"><title>";
  out += HtmlEscape(title);
  out += " · Magnetar</title><style>";
  out += kCss;
  out += "</style></head>\n<body><main class=\"card\"><div class=\"brand\">";
  out += kLogo;
  out += "<span>Magnetar</span></div>\n";
  out += body;
  out += "\n</main><footer>Magnetar · device sign-in</footer></body></html>\n";
  return out;
}

// "2026-11-23 16:34:10 UTC"
std::string HumanTime(UnixMicros t) {
  std::string iso = FormatRfc3339(t);  // 2026-11-23T16:34:10.123456Z
  iso = iso.substr(0, 19);
  if (iso.size() > 10) iso[10] = ' ';
  return iso + " UTC";
}

std::string MinutesLeft(const DeviceRecord& record, UnixMicros now) {
  const int64_t seconds = std::max<int64_t>(0, (record.expires_at - now) / 1'000'000);
  if (seconds < 60) return "in less than a minute";
  const int64_t minutes = (seconds + 30) / 60;
  return "in " + std::to_string(minutes) + (minutes == 1 ? " minute" : " minutes");
}

std::string Hidden(std::string_view name, std::string_view value) {
  std::string out = "<input type=\"hidden\" name=\"";
  out += name;
  out += "\" value=\"";
  out += HtmlEscape(value);
  out += "\">";
  return out;
}

// What is asking: the code, who requested it, when, and whether a paired token is wanted.
std::string RequestDetails(const DeviceRecord& record, UnixMicros now) {
  std::string out = "<span class=\"code\" id=\"user-code\">";
  out += HtmlEscape(record.user_code);
  out += "</span>\n<dl><dt>Requested by</dt><dd id=\"client-hint\">";
  out += record.client_hint && !record.client_hint->empty() ? HtmlEscape(*record.client_hint)
                                                            : "<em>(not given)</em>";
  out += "</dd><dt>Requested</dt><dd>";
  out += HumanTime(record.issued_at);
  out += "</dd><dt>Expires</dt><dd>";
  out += MinutesLeft(record, now);
  out += "</dd></dl>\n";
  if (record.pair) {
    out += "<p class=\"notice info\" id=\"pair-notice\"><strong>Two sessions requested.</strong> "
           "Approving also gives this device a second, independent (paired) token, for a "
           "service that works next to it.</p>\n";
  }
  return out;
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

const std::string& DevicePageCsp() {
  static const std::string csp = [] {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(kCss.data()), kCss.size(), digest);
    const std::string hash =
        Base64Std(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
    return "default-src 'none'; style-src 'sha256-" + hash +
           "'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
  }();
  return csp;
}

http::Response DevicePageResponse(unsigned status, std::string html) {
  return http::Response::Html(status, std::move(html))
      .WithHeader("Content-Security-Policy", DevicePageCsp())
      .WithHeader("X-Frame-Options", "DENY")
      .WithHeader("Cache-Control", "no-store")
      // Not no-referrer: under it browsers send "Origin: null" with our own form posts, which
      // would defeat the same-origin check. same-origin still never sends the page's URL (it
      // carries the user code) to another site.
      .WithHeader("Referrer-Policy", "same-origin")
      .WithHeader("X-Content-Type-Options", "nosniff");
}

std::string EnterCodePage(const std::optional<DevicePageUser>& user,
                          std::optional<std::string_view> error, std::string_view typed) {
  std::string body =
      "<h1>Connect a device</h1>\n<p class=\"muted\">Enter the code your device shows. "
      "Dashes and capitals are optional.</p>\n";
  if (error) {
    body += "<p class=\"notice error\" role=\"alert\">";
    body += HtmlEscape(*error);
    body += "</p>\n";
  }
  body += "<form method=\"get\" action=\"/auth/device\"><label for=\"user_code\">Code</label>"
          "<input class=\"code-input\" type=\"text\" id=\"user_code\" name=\"user_code\" "
          "placeholder=\"XXXX-XXXX\" maxlength=\"16\" autocomplete=\"off\" autocapitalize=\""
          "characters\" spellcheck=\"false\" autofocus required value=\"";
  body += HtmlEscape(typed);
  body += "\"><button class=\"primary\" type=\"submit\" id=\"continue\">Continue</button>"
          "</form>";
  if (user) {
    body += "\n<div class=\"who\"><span>Signed in as <strong id=\"signed-in-user\">";
    body += HtmlEscape(user->username);
    body += "</strong></span><form method=\"post\" action=\"/auth/device/logout\">";
    body += Hidden("csrf_token", user->csrf_token);
    body += "<button class=\"link\" type=\"submit\" id=\"signout\">Sign out</button></form></div>";
  }
  return Layout("Connect a device", body);
}

std::string CodeNotRecognisedPage() {
  return Layout("Code not recognised",
                "<div class=\"result bad\" aria-hidden=\"true\">?</div>"
                "<h1>Code not recognised</h1>\n<p class=\"muted\">That code is unknown, has "
                "already been used or denied, or has expired. Start the sign-in on your device "
                "again to get a new code.</p>\n<p><a href=\"/auth/device\">Enter another "
                "code</a></p>");
}

std::string SignInPage(const DeviceRecord& record, UnixMicros now,
                       std::optional<std::string_view> error, std::string_view username) {
  std::string body =
      "<h1>Sign in to approve a device</h1>\n<p class=\"muted\">A device is asking for access "
      "to your Magnetar account. Check that the code matches the one it shows, then sign "
      "in.</p>\n";
  body += RequestDetails(record, now);
  if (error) {
    body += "<p class=\"notice error\" role=\"alert\" id=\"signin-error\">";
    body += HtmlEscape(*error);
    body += "</p>\n";
  }
  body += "<form method=\"post\" action=\"/auth/device/login\">";
  body += Hidden("user_code", record.user_code);
  body += "<label for=\"username\">Username</label><input type=\"text\" id=\"username\" "
          "name=\"username\" autocomplete=\"username\" required value=\"";
  body += HtmlEscape(username);
  body += "\"><label for=\"password\">Password</label><input type=\"password\" id=\"password\" "
          "name=\"password\" autocomplete=\"current-password\" required>"
          "<button class=\"primary\" type=\"submit\" id=\"signin\">Sign in</button></form>";
  return Layout("Sign in", body);
}

std::string ApprovePage(const DeviceRecord& record, const DevicePageUser& user, UnixMicros now) {
  std::string body = "<h1>Allow this device?</h1>\n<p class=\"muted\">It will be able to "
                     "publish and read messages as <strong>";
  body += HtmlEscape(user.username);
  body += "</strong>. Approve only if you started this sign-in and the code matches the one "
          "your device shows.</p>\n";
  body += RequestDetails(record, now);
  const std::string fields =
      Hidden("user_code", record.user_code) + Hidden("csrf_token", user.csrf_token);
  body += "<div class=\"actions\"><form method=\"post\" action=\"/auth/device/deny\">";
  body += fields;
  body += "<button class=\"deny\" type=\"submit\" id=\"deny\">Deny</button></form>"
          "<form method=\"post\" action=\"/auth/device/approve\">";
  body += fields;
  body += "<button class=\"approve\" type=\"submit\" id=\"approve\">Approve</button></form></div>"
          "\n<div class=\"who\"><span>Signed in as <strong id=\"signed-in-user\">";
  body += HtmlEscape(user.username);
  body += "</strong></span><form method=\"post\" action=\"/auth/device/logout\">";
  body += fields;
  body += "<button class=\"link\" type=\"submit\" id=\"signout\">Sign out</button></form></div>";
  return Layout("Approve device", body);
}

std::string ApprovedPage(std::string_view username) {
  std::string body = "<div class=\"result ok\" aria-hidden=\"true\">&#10003;</div>"
                     "<h1 id=\"result\">Approved — you can return to your device</h1>\n"
                     "<p class=\"muted\">The device is now signed in as <strong>";
  body += HtmlEscape(username);
  body += "</strong>. It picks up its token within a few seconds. You can close this page.</p>";
  return Layout("Approved", body);
}

std::string DeniedPage() {
  return Layout("Denied",
                "<div class=\"result bad\" aria-hidden=\"true\">&#10005;</div>"
                "<h1 id=\"result\">Denied</h1>\n<p class=\"muted\">The device was refused and "
                "its code no longer works. If that was a mistake, start the sign-in on the "
                "device again.</p>");
}

std::string MessagePage(std::string_view title, std::string_view message,
                        std::string_view back_href) {
  std::string body = "<h1>";
  body += HtmlEscape(title);
  body += "</h1>\n<p class=\"muted\">";
  body += HtmlEscape(message);
  body += "</p>\n<p><a href=\"";
  body += HtmlEscape(back_href);
  body += "\">Back to the start</a></p>";
  return Layout(title, body);
}

}  // namespace magnetar::relay
