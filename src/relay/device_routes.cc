// The device authorization grant on the wire (RFC 8628 with the relay's pair=true extension;
// spec §5.7, §5.9, correction D9): /auth/device/code and /auth/device/token for the device, and
// the verification page for the person who approves it.
//
// Unlike the reference, the flow needs no OIDC: a person signs in on the page itself with their
// Magnetar username and password (the same Argon2 check and the same rate limit as
// /auth/login), which sets a short-lived signed session cookie (DevicePageSessions). Approve and
// deny both require that signed-in user (D9) and are CSRF-protected twice: an anti-CSRF token
// bound to the session in a hidden form field, and an Origin/Referer same-origin check when the
// browser sends either. A program may approve or deny with `Authorization: Bearer <access
// token>` instead (no cookie, so nothing to forge) and gets JSON.
//
// Failed user-code lookups (page, approve, deny) are counted per client and over the whole code
// space; past either budget every lookup answers 429, so codes cannot be guessed at any useful
// rate from one address or many.

#include <cctype>
#include <memory>

#include "common/log.h"
#include "relay/device_codes.h"
#include "relay/device_page.h"
#include "relay/device_sessions.h"
#include "relay/json_util.h"
#include "relay/password_login.h"
#include "relay/rate_limiter.h"
#include "relay/refresh_tokens.h"
#include "relay/relay_api.h"
#include "relay/request_auth.h"
#include "relay/store_reads.h"
#include "relay/token_issuer.h"
#include "relay/validation.h"

namespace magnetar::relay {

namespace {

namespace bhttp = boost::beast::http;

using Form = std::vector<std::pair<std::string, std::string>>;

// A client hint longer than this (in characters) is refused (422); a User-Agent standing in for
// it is cut to this many bytes.
constexpr size_t kMaxClientHintChars = 256;
// Rate-limit keys. "login" is the key of POST /auth/login: the page's sign-in shares its budget.
constexpr std::string_view kLoginRoute = "login";
constexpr std::string_view kLookupRoute = "device_lookup";
constexpr std::string_view kAllClients = "*";

const std::string* FormValue(const Form& form, std::string_view key) {
  for (const auto& [k, v] : form) {
    if (k == key) return &v;
  }
  return nullptr;
}

// RFC 8628 §3.5 error bodies: {"error": ...[, "error_description": ...]} with 400.
http::Response OAuthError(std::string_view error, std::string_view description = {}) {
  std::string body = R"({"error":)";
  AppendJsonString(body, error);
  if (!description.empty()) {
    body += R"(,"error_description":)";
    AppendJsonString(body, description);
  }
  body.push_back('}');
  return http::Response::Json(400, std::move(body));
}

// `text` cut to at most `max` bytes without splitting a UTF-8 sequence.
std::string TruncateUtf8(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end));
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// "scheme://authority" of an absolute URL; empty when it is not one.
std::string_view OriginOf(std::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0) return {};
  const size_t end = url.find_first_of("/?#", scheme_end + 3);
  return url.substr(0, end);
}

std::string PageLocation(const std::optional<std::string>& user_code) {
  return user_code ? "/auth/device?user_code=" + *user_code : "/auth/device";
}

http::Response Redirect(std::string location) {
  http::Response r = http::Response::Empty(303);
  r.headers.emplace_back("Location", std::move(location));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

// The TokenResponse of an approved device: refresh_token_secondary only with pair (absent, not
// null, otherwise: spec §5.7 step 7).
std::string DeviceTokenJson(const TokenPair& pair, const std::optional<std::string>& secondary) {
  std::string out = R"({"access_token":)";
  AppendJsonString(out, pair.access_token);
  out += R"(,"token_type":"bearer","expires_in":)";
  out += std::to_string(pair.expires_in);
  out += R"(,"refresh_token":)";
  AppendJsonString(out, pair.refresh_token);
  if (secondary) {
    out += R"(,"refresh_token_secondary":)";
    AppendJsonString(out, *secondary);
  }
  out.push_back('}');
  return out;
}

// The routes and what they share. Built once by RelayApi::RegisterDevice and kept alive by the
// route handlers; holds references into the RelayApi, which outlives every request.
class DeviceRoutes : public std::enable_shared_from_this<DeviceRoutes> {
 public:
  DeviceRoutes(const RelayDeps& deps, const RelayOptions& options, DeviceCodes& codes,
               DevicePageSessions& sessions, RefreshTokens& refresh_tokens, RateLimiter& limiter)
      : deps_(deps),
        options_(options),
        codes_(codes),
        sessions_(sessions),
        refresh_tokens_(refresh_tokens),
        limiter_(limiter) {}

  void Code(const http::RequestContextPtr& ctx, http::Responder respond);
  void CodeAllowed(const http::RequestContextPtr& ctx, http::Responder respond,
                   std::optional<std::string> hint, bool pair);
  void Token(const http::RequestContextPtr& ctx, http::Responder respond);
  void TokenAllowed(const std::string& grant_type, const std::string& device_code,
                    http::Responder respond);
  void Page(const http::RequestContextPtr& ctx, http::Responder respond);
  void Login(const http::RequestContextPtr& ctx, http::Responder respond);
  void Logout(const http::RequestContextPtr& ctx, http::Responder respond);
  void Decide(const http::RequestContextPtr& ctx, http::Responder respond, bool approve);

 private:
  struct SignedIn {
    DevicePageSession session;
    auth::User user;
  };

  std::string ClientKey(const http::RequestContext& ctx) const {
    return ctx.remote.address().to_string();
  }
  std::string BaseUrl(const http::RequestContext& ctx) const;
  bool SecureCookie(const http::RequestContext& ctx) const;
  bool SameOrigin(const http::RequestContext& ctx) const;
  // The signed-in user of the request's cookie (active or not), nullopt when there is none.
  Result<std::optional<SignedIn>> CurrentSession(const http::RequestContext& ctx) const;
  DevicePageUser PageUser(const SignedIn& signed_in) const {
    return DevicePageUser{signed_in.user.username, sessions_.CsrfToken(signed_in.session)};
  }
  std::string SessionCookie(const std::string& value, const http::RequestContext& ctx,
                            int max_age) const;

  // Peek at both failed-lookup budgets; the refusal when either is spent.
  std::optional<RateDecision> LookupThrottled(const http::RequestContext& ctx);
  void CountFailedLookup(const http::RequestContext& ctx);
  static http::Response PageThrottled(const RateDecision& d) {
    return DevicePageResponse(
               429, MessagePage("Too many attempts", "Please wait a minute before trying again."))
        .WithHeader("Retry-After", std::to_string(d.retry_after_seconds));
  }
  static http::Response PageError() {
    return DevicePageResponse(500, MessagePage("Something went wrong",
                                               "The server could not complete this request. "
                                               "Please try again in a moment."));
  }

  void DecideWithBearer(const http::RequestContextPtr& ctx, http::Responder respond, bool approve);
  void DecideWithSession(const http::RequestContextPtr& ctx, http::Responder respond, bool approve);

  const RelayDeps& deps_;
  const RelayOptions& options_;
  DeviceCodes& codes_;
  DevicePageSessions& sessions_;
  RefreshTokens& refresh_tokens_;
  RateLimiter& limiter_;
};

std::string DeviceRoutes::BaseUrl(const http::RequestContext& ctx) const {
  if (!options_.public_base_url.empty()) {
    std::string base = options_.public_base_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    return base;
  }
  std::string_view host = ctx.Header(bhttp::field::host);
  if (host.empty()) host = "localhost";
  return std::string(ctx.is_tls ? "https://" : "http://") + std::string(host);
}

bool DeviceRoutes::SecureCookie(const http::RequestContext& ctx) const {
  return ctx.is_tls || options_.public_base_url.starts_with("https://");
}

bool DeviceRoutes::SameOrigin(const http::RequestContext& ctx) const {
  std::string_view source = ctx.Header(bhttp::field::origin);
  if (source.empty()) {
    const std::string_view referer = ctx.Header(bhttp::field::referer);
    // Neither header (old browsers, privacy settings): the anti-CSRF token alone decides.
    if (referer.empty()) return true;
    source = OriginOf(referer);
  }
  // "null" is what sandboxed frames, data: URLs and no-referrer pages send: never ours.
  if (source.empty() || source == "null") return false;
  if (!options_.public_base_url.empty() && IEquals(source, OriginOf(options_.public_base_url))) {
    return true;
  }
  const std::string_view host = ctx.Header(bhttp::field::host);
  if (host.empty()) return false;
  return IEquals(source, "http://" + std::string(host)) ||
         IEquals(source, "https://" + std::string(host));
}

Result<std::optional<DeviceRoutes::SignedIn>> DeviceRoutes::CurrentSession(
    const http::RequestContext& ctx) const {
  const std::optional<SignedIn> none;
  auto cookie = FindCookie(ctx.Header(bhttp::field::cookie), kDevicePageCookie);
  if (!cookie || cookie->empty()) return none;
  auto session = sessions_.Verify(*cookie);
  if (!session.ok()) return session.status();
  if (!*session) return none;
  auto user = deps_.users.GetById((*session)->user_id);
  if (!user.ok()) {
    if (user.status().code() == StatusCode::kNotFound) return none;  // deleted meanwhile
    return user.status();
  }
  return std::optional<SignedIn>(SignedIn{std::move(**session), std::move(user).value()});
}

std::string DeviceRoutes::SessionCookie(const std::string& value, const http::RequestContext& ctx,
                                        int max_age) const {
  std::string cookie = std::string(kDevicePageCookie) + "=" + value +
                       "; Path=" + kDevicePageCookiePath + "; Max-Age=" + std::to_string(max_age) +
                       "; HttpOnly; SameSite=Strict";
  if (SecureCookie(ctx)) cookie += "; Secure";
  return cookie;
}

std::optional<RateDecision> DeviceRoutes::LookupThrottled(const http::RequestContext& ctx) {
  RateDecision d =
      limiter_.Peek(kLookupRoute, ClientKey(ctx), options_.device_lookup_failures_per_client);
  if (!d.allowed) return d;
  d = limiter_.Peek(kLookupRoute, kAllClients, options_.device_lookup_failures_total);
  if (!d.allowed) return d;
  return std::nullopt;
}

void DeviceRoutes::CountFailedLookup(const http::RequestContext& ctx) {
  limiter_.Hit(kLookupRoute, ClientKey(ctx), options_.device_lookup_failures_per_client);
  limiter_.Hit(kLookupRoute, kAllClients, options_.device_lookup_failures_total);
}

// --- POST /auth/device/code ---------------------------------------------------------------------

void DeviceRoutes::Code(const http::RequestContextPtr& ctx, http::Responder respond) {
  const Form form = ParseForm(ctx->request.body());
  ValidationErrors errors;
  bool pair = false;
  if (const std::string* value = FormValue(form, "pair")) {
    pair = LaxBool(json::string(*value), json::array{"body", "pair"}, errors).value_or(false);
  }
  std::optional<std::string> hint;
  if (const std::string* value = FormValue(form, "client_hint"); value && !value->empty()) {
    json::object obj;
    obj["client_hint"] = *value;
    hint =
        StringField(obj, "client_hint", json::array{"body"}, errors, false, 0, kMaxClientHintChars);
  }
  if (!errors.empty()) return respond(errors.ToResponse());
  // Without waiting on this thread for a shared (Redis) counter: the rest runs when it answers.
  CheckRateLimitAsync(limiter_, "device_code", options_.rate_limit_device_code, *ctx,
                      [self = shared_from_this(), ctx, respond, hint = std::move(hint),
                       pair](std::optional<http::Response> limited) mutable {
                        if (limited) return respond(std::move(*limited));
                        RunWithRecords(self->deps_, [self, ctx, respond = std::move(respond),
                                                     hint = std::move(hint), pair]() mutable {
                          self->CodeAllowed(ctx, std::move(respond), std::move(hint), pair);
                        });
                      });
}

void DeviceRoutes::CodeAllowed(const http::RequestContextPtr& ctx, http::Responder respond,
                               std::optional<std::string> hint, bool pair) {
  if (!hint) {
    const std::string_view agent = ctx->Header(bhttp::field::user_agent);
    if (!agent.empty()) hint = TruncateUtf8(agent, kMaxClientHintChars);
  }

  auto created = codes_.Create(std::move(hint), pair);
  if (!created.ok()) {
    Logger("relay")->warn("device code not created: {}", created.status().ToString());
    return respond(http::InternalErrorResponse());
  }
  const DeviceRecord& r = created->record;
  const std::string page = BaseUrl(*ctx) + "/auth/device";
  const int64_t expires_in = std::max<int64_t>(0, (r.expires_at - deps_.clock.Now()) / 1'000'000);
  std::string out = R"({"device_code":)";
  AppendJsonString(out, created->device_code);
  out += R"(,"user_code":)";
  AppendJsonString(out, r.user_code);
  out += R"(,"verification_uri":)";
  AppendJsonString(out, page);
  out += R"(,"verification_uri_complete":)";
  AppendJsonString(out, page + "?user_code=" + r.user_code);
  out += R"(,"expires_in":)" + std::to_string(expires_in);
  out += R"(,"interval":)" + std::to_string(r.interval_seconds) + "}";
  respond(http::Response::Json(200, std::move(out)).WithHeader("Cache-Control", "no-store"));
}

// --- POST /auth/device/token --------------------------------------------------------------------

void DeviceRoutes::Token(const http::RequestContextPtr& ctx, http::Responder respond) {
  const Form form = ParseForm(ctx->request.body());
  ValidationErrors errors;
  const std::string* grant_type = FormValue(form, "grant_type");
  const std::string* device_code = FormValue(form, "device_code");
  if (!grant_type) errors.Missing(json::array{"body", "grant_type"}, nullptr);
  if (!device_code) errors.Missing(json::array{"body", "device_code"}, nullptr);
  if (!errors.empty()) return respond(errors.ToResponse());
  CheckRateLimitAsync(limiter_, "device_token", options_.rate_limit_device_token, *ctx,
                      [self = shared_from_this(), respond, grant_type = *grant_type,
                       device_code = *device_code](std::optional<http::Response> limited) mutable {
                        if (limited) return respond(std::move(*limited));
                        RunWithRecords(self->deps_, [self, grant_type = std::move(grant_type),
                                                     device_code = std::move(device_code),
                                                     respond = std::move(respond)]() mutable {
                          self->TokenAllowed(grant_type, device_code, std::move(respond));
                        });
                      });
}

void DeviceRoutes::TokenAllowed(const std::string& grant_type, const std::string& device_code,
                                http::Responder respond) {
  if (grant_type != kDeviceCodeGrantType) {
    return respond(OAuthError("unsupported_grant_type", "Use device_code grant."));
  }

  auto poll = codes_.Poll(device_code);
  if (!poll.ok()) return respond(http::InternalErrorResponse());
  using Kind = DevicePoll::Kind;
  switch (poll->kind) {
    case Kind::kUnknown:
      return respond(OAuthError("expired_token", "Unknown device_code"));
    case Kind::kExpired:
      return respond(OAuthError("expired_token"));
    case Kind::kDenied:
      return respond(OAuthError("access_denied"));
    case Kind::kSlowDown:
      return respond(OAuthError("slow_down"));
    case Kind::kPending:
      return respond(OAuthError("authorization_pending"));
    case Kind::kUnexpected:
      return respond(OAuthError("expired_token", "Unexpected device-code status"));
    case Kind::kApproved:
      break;
  }

  const DeviceRecord& record = poll->record;
  // The approver must still exist and be active; otherwise the code is not consumed (§5.7).
  auto user = deps_.users.GetById(record.user_id);
  if (!user.ok() && user.status().code() != StatusCode::kNotFound) {
    return respond(http::InternalErrorResponse());
  }
  if (!user.ok() || !user->is_active) return respond(OAuthError("expired_token"));

  // Single use: exactly one poll wins the swap approved -> consumed.
  auto consumed = codes_.Consume(*poll);
  if (!consumed.ok()) return respond(http::InternalErrorResponse());
  if (!*consumed) return respond(OAuthError("expired_token", "Unknown device_code"));

  const std::string hint = record.client_hint.value_or("");
  TokenIssuer issuer(deps_.jwt, refresh_tokens_, deps_.clock, options_.access_token_expire_minutes);
  auto tokens = issuer.Issue(*user, hint);
  if (!tokens.ok()) return respond(http::InternalErrorResponse());
  std::optional<std::string> secondary;
  if (record.pair) {
    // A second refresh token with no parent: an independent chain, so revoking or replaying one
    // never touches the other (spec §5.6).
    auto second =
        refresh_tokens_.Issue(user->user_id, hint.empty() ? "secondary" : hint + "-secondary");
    if (!second.ok()) return respond(http::InternalErrorResponse());
    secondary = std::move(second->wire);
  }
  Logger("relay")->info("device authorization of user {} exchanged for tokens{}", user->user_id,
                        record.pair ? " (paired)" : "");
  respond(http::Response::Json(200, DeviceTokenJson(*tokens, secondary))
              .WithHeader("Cache-Control", "no-store"));
}

// --- GET /auth/device[/] ------------------------------------------------------------------------

void DeviceRoutes::Page(const http::RequestContextPtr& ctx, http::Responder respond) {
  const RateDecision page_budget =
      limiter_.Hit("device_page", ClientKey(*ctx), options_.rate_limit_device_page);
  if (!page_budget.allowed) {
    return respond(PageThrottled(page_budget));
  }
  auto signed_in = CurrentSession(*ctx);
  if (!signed_in.ok()) return respond(PageError());
  // A deactivated account shows the page as if nobody were signed in.
  if (*signed_in && !(*signed_in)->user.is_active) signed_in = std::optional<SignedIn>();
  std::optional<DevicePageUser> page_user;
  if (*signed_in) page_user = PageUser(**signed_in);

  const auto typed = ctx->Query("user_code");
  if (!typed || typed->find_first_not_of(" \t") == std::string_view::npos) {
    return respond(DevicePageResponse(200, EnterCodePage(page_user)));
  }
  if (auto throttled = LookupThrottled(*ctx)) {
    return respond(PageThrottled(*throttled));
  }
  const auto code = NormalizeUserCode(*typed);
  std::optional<DeviceRecord> record;
  if (code) {
    auto found = codes_.FindPending(*code);
    if (!found.ok()) return respond(PageError());
    record = std::move(*found);
  }
  if (!record) {
    CountFailedLookup(*ctx);
    return respond(DevicePageResponse(404, CodeNotRecognisedPage()));
  }
  const UnixMicros now = deps_.clock.Now();
  if (page_user) return respond(DevicePageResponse(200, ApprovePage(*record, *page_user, now)));
  respond(DevicePageResponse(200, SignInPage(*record, now)));
}

// --- POST /auth/device/login --------------------------------------------------------------------

void DeviceRoutes::Login(const http::RequestContextPtr& ctx, http::Responder respond) {
  const Form form = ParseForm(ctx->request.body());
  // Login CSRF: a foreign page must not sign a visitor into someone else's account.
  if (!SameOrigin(*ctx)) {
    return respond(DevicePageResponse(
        403, MessagePage("Request refused", "This sign-in did not come from this page.")));
  }
  std::optional<std::string> code;
  if (const std::string* typed = FormValue(form, "user_code")) code = NormalizeUserCode(*typed);
  const std::string* username = FormValue(form, "username");
  const std::string* password = FormValue(form, "password");
  if (!username || !password || username->empty() || password->empty()) {
    return respond(DevicePageResponse(
        400, MessagePage("Sign-in incomplete", "Enter both your username and your password.",
                         PageLocation(code))));
  }
  // The budget of POST /auth/login: wrong passwords here count against the same limit.
  const RateDecision budget = limiter_.Hit(kLoginRoute, ClientKey(*ctx), options_.rate_limit_login);
  if (!budget.allowed) return respond(PageThrottled(budget));

  // The password hash, then the records (codes, page sessions): all on the blocking pool.
  deps_.blocking.Post(
      [self = shared_from_this(), ctx, respond, code, username = *username, password = *password] {
        const PasswordLogin outcome = CheckPasswordLogin(self->deps_.users, username, password);
        using Kind = PasswordLogin::Kind;
        if (outcome.kind == Kind::kError) return respond(PageError());
        if (outcome.kind != Kind::kOk) {
          const unsigned status = outcome.kind == Kind::kInactive ? 403 : 401;
          const std::string_view error = outcome.kind == Kind::kInactive
                                             ? "This account is deactivated."
                                             : "Incorrect username or password.";
          // Back to the sign-in form of the code, if it is still pending.
          if (code) {
            auto record = self->codes_.FindPending(*code);
            if (record.ok() && *record) {
              return respond(DevicePageResponse(
                  status, SignInPage(**record, self->deps_.clock.Now(), error, username)));
            }
          }
          return respond(
              DevicePageResponse(status, MessagePage("Sign-in failed", error, PageLocation(code))));
        }
        const std::string cookie = self->SessionCookie(self->sessions_.Issue(outcome.user.user_id),
                                                       *ctx, self->sessions_.lifetime_seconds());
        Logger("relay")->info("device page: user {} signed in", outcome.user.user_id);
        respond(Redirect(PageLocation(code)).WithHeader("Set-Cookie", cookie));
      });
}

// --- POST /auth/device/logout -------------------------------------------------------------------

void DeviceRoutes::Logout(const http::RequestContextPtr& ctx, http::Responder respond) {
  const Form form = ParseForm(ctx->request.body());
  std::optional<std::string> code;
  if (const std::string* typed = FormValue(form, "user_code")) code = NormalizeUserCode(*typed);
  auto signed_in = CurrentSession(*ctx);
  if (!signed_in.ok()) return respond(PageError());
  if (*signed_in) {
    const std::string* token = FormValue(form, "csrf_token");
    if (!SameOrigin(*ctx) || !token || !sessions_.CsrfValid((*signed_in)->session, *token)) {
      return respond(DevicePageResponse(
          403, MessagePage("Request refused", "This request did not come from this page.")));
    }
    if (!sessions_.SignOut((*signed_in)->session).ok()) return respond(PageError());
  }
  respond(Redirect(PageLocation(code)).WithHeader("Set-Cookie", SessionCookie("", *ctx, 0)));
}

// --- POST /auth/device/approve and /auth/device/deny --------------------------------------------

void DeviceRoutes::Decide(const http::RequestContextPtr& ctx, http::Responder respond,
                          bool approve) {
  // An explicit bearer token wins: a program's call, which carries no ambient credential.
  if (!ctx->Header(bhttp::field::authorization).empty()) {
    return DecideWithBearer(ctx, std::move(respond), approve);
  }
  DecideWithSession(ctx, std::move(respond), approve);
}

void DeviceRoutes::DecideWithBearer(const http::RequestContextPtr& ctx, http::Responder respond,
                                    bool approve) {
  const std::string_view content_type = ctx->Header(bhttp::field::content_type);
  const bool is_json = content_type.starts_with("application/json");
  std::optional<json::value> body;
  if (is_json) {
    std::string parse_error;
    body = ParseJson(ctx->request.body(), &parse_error);
    if (!body) return respond(JsonInvalidResponse(parse_error));
  }
  auto outcome = AuthenticateRequest(deps_.authenticator, *ctx, std::nullopt);
  if (auto* refusal = std::get_if<http::Response>(&outcome)) return respond(std::move(*refusal));
  const auth::User& user = std::get<auth::AuthContext>(outcome).user;

  ValidationErrors errors;
  std::optional<std::string> typed;
  if (is_json) {
    const json::object* obj = BodyObject(*body, errors);
    if (obj) typed = StringField(*obj, "user_code", json::array{"body"}, errors, true);
  } else {
    const Form form = ParseForm(ctx->request.body());
    if (const std::string* value = FormValue(form, "user_code")) {
      typed = *value;
    } else {
      errors.Missing(json::array{"body", "user_code"}, nullptr);
    }
  }
  if (!errors.empty()) return respond(errors.ToResponse());

  if (auto throttled = LookupThrottled(*ctx)) {
    return respond(RateLimitedResponse(options_.device_lookup_failures_per_client,
                                       throttled->retry_after_seconds));
  }
  const auto code = NormalizeUserCode(*typed);
  Status s = !code     ? NotFound("Unknown user_code")
             : approve ? codes_.Approve(*code, user.user_id)
                       : codes_.Deny(*code, user.user_id);
  if (s.code() == StatusCode::kNotFound) {
    CountFailedLookup(*ctx);
    return respond(Detail(404, "Unknown user_code"));
  }
  if (!s.ok()) return respond(http::InternalErrorResponse());
  Logger("relay")->info("device authorization {} by user {} (bearer)",
                        approve ? "approved" : "denied", user.user_id);
  respond(
      http::Response::Json(200, approve ? R"({"status":"approved"})" : R"({"status":"denied"})"));
}

void DeviceRoutes::DecideWithSession(const http::RequestContextPtr& ctx, http::Responder respond,
                                     bool approve) {
  const Form form = ParseForm(ctx->request.body());
  std::optional<std::string> code;
  const std::string* typed = FormValue(form, "user_code");
  if (typed) code = NormalizeUserCode(*typed);

  auto signed_in = CurrentSession(*ctx);
  if (!signed_in.ok()) return respond(PageError());
  if (!*signed_in) {
    return respond(
        DevicePageResponse(401, MessagePage("Please sign in",
                                            "Your sign-in is missing or has expired. Sign in "
                                            "again to decide about this device.",
                                            PageLocation(code))));
  }
  const SignedIn& who = **signed_in;
  const std::string* token = FormValue(form, "csrf_token");
  if (!SameOrigin(*ctx) || !token || !sessions_.CsrfValid(who.session, *token)) {
    return respond(DevicePageResponse(
        403, MessagePage("Request refused",
                         "This request did not come from this page, so nothing was changed.",
                         PageLocation(code))));
  }
  if (!who.user.is_active) {
    return respond(DevicePageResponse(
        403, MessagePage("Account deactivated",
                         "This account is deactivated and cannot approve or deny devices.")));
  }
  if (auto throttled = LookupThrottled(*ctx)) {
    return respond(PageThrottled(*throttled));
  }
  Status s = !code     ? NotFound("Unknown user_code")
             : approve ? codes_.Approve(*code, who.user.user_id)
                       : codes_.Deny(*code, who.user.user_id);
  if (s.code() == StatusCode::kNotFound) {
    CountFailedLookup(*ctx);
    return respond(DevicePageResponse(404, CodeNotRecognisedPage()));
  }
  if (!s.ok()) return respond(PageError());
  Logger("relay")->info("device authorization {} by user {} (page)",
                        approve ? "approved" : "denied", who.user.user_id);
  respond(DevicePageResponse(200, approve ? ApprovedPage(who.user.username) : DeniedPage()));
}

}  // namespace

void RelayApi::RegisterDevice(http::HttpService& service) {
  auto routes = std::make_shared<DeviceRoutes>(deps_, options_, *device_codes_, *device_sessions_,
                                               *refresh_tokens_, *rate_limiter_);
  auto& router = service.router();
  auto bind = [this, routes](
                  void (DeviceRoutes::*method)(const http::RequestContextPtr&, http::Responder)) {
    // The device routes read and write records (codes, page sessions, users) as they go.
    return OnRecordsThread(
        deps_, [routes, method](const http::RequestContextPtr& ctx, http::Responder respond) {
          ((*routes).*method)(ctx, std::move(respond));
        });
  };
  router.Add(http::Verb::post, "/auth/device/code", bind(&DeviceRoutes::Code));
  router.Add(http::Verb::post, "/auth/device/token", bind(&DeviceRoutes::Token));
  router.Add(http::Verb::get, "/auth/device", bind(&DeviceRoutes::Page));
  router.Add(http::Verb::get, "/auth/device/", bind(&DeviceRoutes::Page));
  router.Add(http::Verb::post, "/auth/device/login", bind(&DeviceRoutes::Login));
  router.Add(http::Verb::post, "/auth/device/logout", bind(&DeviceRoutes::Logout));
  router.Add(
      http::Verb::post, "/auth/device/approve",
      OnRecordsThread(deps_, [routes](const http::RequestContextPtr& ctx, http::Responder respond) {
        routes->Decide(ctx, std::move(respond), true);
      }));
  router.Add(
      http::Verb::post, "/auth/device/deny",
      OnRecordsThread(deps_, [routes](const http::RequestContextPtr& ctx, http::Responder respond) {
        routes->Decide(ctx, std::move(respond), false);
      }));
}

}  // namespace magnetar::relay
