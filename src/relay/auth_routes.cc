// The auth routes the relay clients need to get going (spec §1.3-§1.6): password login
// (rate-limited, §5.9), register (admin), me, logout. Password hashing runs on the blocking pool,
// never on I/O threads. User management is in user_routes.cc, refresh tokens in token_routes.cc.

#include "auth/password.h"
#include "common/log.h"
#include "common/random.h"
#include "relay/auth_metrics.h"
#include "relay/json_util.h"
#include "relay/password_login.h"
#include "relay/relay_api.h"
#include "relay/request_auth.h"
#include "relay/store_reads.h"
#include "relay/token_issuer.h"
#include "relay/user_json.h"
#include "relay/validation.h"

namespace magnetar::relay {

namespace {

const std::string* FormValue(const std::vector<std::pair<std::string, std::string>>& form,
                             std::string_view key) {
  for (const auto& [k, v] : form) {
    if (k == key) return &v;
  }
  return nullptr;
}

}  // namespace

void RelayApi::RegisterAuth(http::HttpService& service) {
  auto& router = service.router();

  router.Add(http::Verb::post, "/auth/login",
             [this](const http::RequestContextPtr& ctx, http::Responder respond) {
               const auto form = ParseForm(ctx->request.body());
               ValidationErrors errors;
               const json::value input = json::object();
               const std::string* username = FormValue(form, "username");
               const std::string* password = FormValue(form, "password");
               if (!username) errors.Missing(json::array{"body", "username"}, nullptr);
               if (!password) errors.Missing(json::array{"body", "password"}, nullptr);
               if (const std::string* grant = FormValue(form, "grant_type");
                   grant && *grant != "password") {
                 json::object c;
                 c["pattern"] = "^password$";
                 errors.Add("string_pattern_mismatch", json::array{"body", "grant_type"},
                            "String should match pattern '^password$'", json::string(*grant),
                            std::move(c));
               }
               if (!errors.empty()) return respond(errors.ToResponse());
               // Wrong passwords count too: the check precedes the credentials (spec §1.3).
               // Same cost whether or not the user exists or has a password (no timing oracle);
               // an overlong password is refused without hashing (password_login.h).
               ThenIfAllowed(
                   ctx, "login", options_.rate_limit_login, "", {}, 0, 0, respond,
                   [this, ctx, respond, username = *username, password = *password] {
                     // The password hash, then the new refresh-token record: both on the blocking
                     // pool.
                     deps_.blocking.Post([this, respond, username, password] {
                       const PasswordLogin out =
                           CheckPasswordLogin(deps_.users, username, password);
                       switch (out.kind) {
                         case PasswordLogin::Kind::kBadCredentials:
                           return respond(Unauthorized("Incorrect username or password"));
                         case PasswordLogin::Kind::kInactive:
                           return respond(Detail(403, "User account is inactive"));
                         case PasswordLogin::Kind::kError:
                           return respond(http::InternalErrorResponse());
                         case PasswordLogin::Kind::kOk:
                           break;
                       }
                       TokenIssuer issuer(deps_.jwt, *refresh_tokens_, deps_.clock,
                                          options_.access_token_expire_minutes);
                       auto pair = issuer.Issue(out.user, "password-login");
                       if (!pair.ok()) return respond(http::InternalErrorResponse());
                       respond(http::Response::Json(200, TokenIssuer::ResponseJson(*pair)));
                     });
                   });
             });

  router.Add(http::Verb::post, "/auth/register",
             RequireAuthJson(
                 deps_, auth::Permission::kAdmin,
                 [this](const http::RequestContextPtr& ctx, auth::AuthContext,
                        const json::value& body_value, http::Responder respond) {
                   const json::value* body = &body_value;
                   ValidationErrors errors;
                   const json::object* obj = BodyObject(*body, errors);
                   if (!obj) return respond(errors.ToResponse());
                   const json::array loc{"body"};
                   auto username = StringField(*obj, "username", loc, errors, true, 3, 50);
                   auto email = StringField(*obj, "email", loc, errors, false);
                   auto password =
                       StringField(*obj, "password", loc, errors, true, 8, auth::kMaxPasswordChars);
                   std::vector<std::string> permissions;
                   if (const json::value* p = obj->if_contains("permissions"); p && !p->is_null()) {
                     if (auto list = PermissionList(*p, errors)) permissions = std::move(*list);
                   }
                   if (!errors.empty()) return respond(errors.ToResponse());

                   auth::User user;
                   user.user_id = NewUuid4();
                   user.username = *username;
                   user.email = email;
                   user.is_active = true;
                   user.created_at = deps_.clock.Now();
                   user.permissions = std::move(permissions);
                   deps_.blocking.Run(
                       ctx->executor,
                       [this, user = std::move(user), password = *password]() mutable {
                         user.password_hash = auth::HashPassword(password);
                         Status s = deps_.users.Create(user);
                         if (s.code() == StatusCode::kAlreadyExists) {
                           return Detail(400, "Username '" + user.username + "' already exists");
                         }
                         if (!s.ok()) return http::InternalErrorResponse();
                         return http::Response::Json(201, UserPublicJson(user, deps_.topics));
                       },
                       [respond](http::Response response) { respond(std::move(response)); });
                 }));

  router.Add(
      http::Verb::get, "/auth/me",
      RequireAuth(
          deps_, std::nullopt,
          [this](const http::RequestContextPtr&, auth::AuthContext auth, http::Responder respond) {
            const auto& user = auth.user;
            respond(http::Response::Json(200, UserPublicJson(user, deps_.topics)));
          },
          HandlerThread::kRecords));

  router.Add(
      http::Verb::post, "/auth/logout",
      OnRecordsThread(deps_, [this](const http::RequestContextPtr& ctx, http::Responder respond) {
        // A decodable, non-revoked token; the user is not looked up (spec §1.5).
        auto token = auth::ParseBearer(ctx->Header(boost::beast::http::field::authorization));
        if (!token) {
          CountAuthFailure("missing_token");
          return respond(Unauthorized("Not authenticated"));
        }
        auto claims = deps_.jwt.Verify(*token, deps_.clock.NowSeconds());
        if (!claims.ok()) {
          CountAuthFailure("invalid_token");
          return respond(Unauthorized("Invalid or expired token"));
        }
        if (claims->jti.empty()) return respond(http::Response::Empty(204));
        auto revoked = deps_.authenticator.IsRevoked(claims->jti);
        if (!revoked.ok()) return respond(http::InternalErrorResponse());
        if (*revoked) {
          CountAuthFailure("revoked_token");
          return respond(Unauthorized("Token has been revoked"));
        }
        if (!deps_.authenticator.Revoke(*claims).ok()) {
          return respond(http::InternalErrorResponse());
        }
        respond(http::Response::Empty(204));
      }));
}

}  // namespace magnetar::relay
