// Refresh tokens on the wire (spec §1.11-§1.14, §5.6): rotation (rate-limited, §5.9), revocation,
// and the bearer's sessions. The record logic (single use, replay kills the chain) is in
// RefreshTokens. Also the OIDC provider list as the reference answers it with OIDC disabled
// (§5.8). The device flow, which works without OIDC here, is in device_routes.cc.

#include <cctype>

#include "common/time_format.h"
#include "relay/auth_metrics.h"
#include "relay/json_util.h"
#include "relay/refresh_tokens.h"
#include "relay/relay_api.h"
#include "relay/request_auth.h"
#include "relay/store_reads.h"
#include "relay/token_issuer.h"
#include "relay/validation.h"

namespace magnetar::relay {

namespace {

// The failure of a refresh step: 401 "invalid refresh token" + WWW-Authenticate, or a 500 when
// the store failed.
http::Response RefreshFailure(const Status& status) {
  if (status.code() == StatusCode::kUnauthenticated) {
    CountAuthFailure("invalid_refresh_token");
    return Unauthorized(kInvalidRefreshToken);
  }
  return http::InternalErrorResponse();
}

}  // namespace

// SessionInfo: jti, issued_at, expires_at, last_used_at (null until used), client_hint.
void AppendSessionJson(std::string& out, const RefreshTokenRecord& r) {
  out += R"({"jti":)";
  AppendJsonString(out, r.jti);
  out += R"(,"issued_at":")";
  AppendRfc3339(out, r.issued_at);
  out += R"(","expires_at":")";
  AppendRfc3339(out, r.expires_at);
  out += R"(","last_used_at":)";
  if (r.last_used_at) {
    out.push_back('"');
    AppendRfc3339(out, *r.last_used_at);
    out.push_back('"');
  } else {
    out += "null";
  }
  out += R"(,"client_hint":)";
  AppendJsonString(out, r.client_hint);
  out.push_back('}');
}

// POST /auth/token/refresh after its rate limit: rotate the refresh token, issue a new pair.
void RelayApi::Refresh(const std::string& wire, const http::Responder& respond) {
  auto record = refresh_tokens_->CheckForRefresh(wire);
  if (!record.ok()) return respond(RefreshFailure(record.status()));
  auto user = deps_.users.GetById(record->user_id);
  if (!user.ok() && user.status().code() != StatusCode::kNotFound) {
    return respond(http::InternalErrorResponse());
  }
  if (!user.ok() || !user->is_active) {
    if (!refresh_tokens_->Revoke(record->jti, RevokeReason::kLogout).ok()) {
      return respond(http::InternalErrorResponse());
    }
    CountAuthFailure("unknown_user");
    return respond(Detail(401, "user not found"));  // no WWW-Authenticate (§1.11)
  }
  auto child = refresh_tokens_->Rotate(record->jti);
  if (!child.ok()) return respond(RefreshFailure(child.status()));
  TokenIssuer issuer(deps_.jwt, *refresh_tokens_, deps_.clock,
                     options_.access_token_expire_minutes);
  respond(http::Response::Json(
      200, TokenIssuer::ResponseJson(issuer.WithRefreshToken(*user, child->wire))));
}

void RelayApi::RegisterTokens(http::HttpService& service) {
  auto& router = service.router();

  router.Add(http::Verb::post, "/auth/token/refresh",
             [this](const http::RequestContextPtr& ctx, http::Responder respond) {
               std::string parse_error;
               auto body = ParseJson(ctx->request.body(), &parse_error);
               if (!body) return respond(JsonInvalidResponse(parse_error));
               ValidationErrors errors;
               const json::object* obj = BodyObject(*body, errors);
               if (!obj) return respond(errors.ToResponse());
               auto wire = StringField(*obj, "refresh_token", json::array{"body"}, errors, true);
               if (!errors.empty()) return respond(errors.ToResponse());
               ThenIfAllowed(ctx, "refresh", options_.rate_limit_refresh, "", {}, 0, 0, respond,
                             [this, respond, wire = std::move(*wire)] {
                               RunWithRecords(deps_, [this, respond, wire] {
                                 Refresh(wire, respond);
                               });
                             });
             });

  router.Add(http::Verb::post, "/auth/token/revoke",
             OnRecordsThread(deps_, [this](const http::RequestContextPtr& ctx,
                                           http::Responder respond) {
               std::string parse_error;
               auto body = ParseJson(ctx->request.body(), &parse_error);
               if (!body) return respond(JsonInvalidResponse(parse_error));
               ValidationErrors errors;
               const json::object* obj = BodyObject(*body, errors);
               if (!obj) return respond(errors.ToResponse());
               auto wire = StringField(*obj, "refresh_token", json::array{"body"}, errors, true);
               bool revoke_chain = false;
               if (const json::value* chain = obj->if_contains("revoke_chain")) {
                 revoke_chain =
                     LaxBool(*chain, json::array{"body", "revoke_chain"}, errors).value_or(false);
               }
               if (!errors.empty()) return respond(errors.ToResponse());
               if (!ParseRefreshToken(*wire))
                 return respond(Detail(400, "malformed refresh token"));

               // Unknown jti or wrong secret: 204 all the same, so this is no enumeration oracle.
               auto record = refresh_tokens_->Verify(*wire);
               if (!record.ok()) {
                 if (record.status().code() == StatusCode::kNotFound) {
                   return respond(http::Response::Empty(204));
                 }
                 return respond(http::InternalErrorResponse());
               }
               Status s = revoke_chain
                              ? refresh_tokens_->RevokeChain(record->jti, RevokeReason::kLogout)
                              : refresh_tokens_->Revoke(record->jti, RevokeReason::kLogout);
               if (!s.ok() && s.code() != StatusCode::kNotFound) {
                 return respond(http::InternalErrorResponse());
               }
               respond(http::Response::Empty(204));
             }));

  router.Add(http::Verb::get, "/auth/sessions",
             RequireAuth(deps_, std::nullopt,
                         [this](const http::RequestContextPtr&, auth::AuthContext auth,
                                http::Responder respond) {
                           const auto& user = auth.user;
                           auto sessions = refresh_tokens_->ListActive(user.user_id);
                           if (!sessions.ok()) return respond(http::InternalErrorResponse());
                           std::string out = "[";
                           for (size_t i = 0; i < sessions->size(); ++i) {
                             if (i) out.push_back(',');
                             AppendSessionJson(out, (*sessions)[i]);
                           }
                           out.push_back(']');
                           respond(http::Response::Json(200, std::move(out)));
                         },
                         HandlerThread::kRecords));

  router.Add(http::Verb::delete_, "/auth/sessions/{jti}",
             RequireAuth(deps_, std::nullopt,
                         [this](const http::RequestContextPtr& ctx, auth::AuthContext auth,
                                http::Responder respond) {
                           const auto& user = auth.user;
                           const std::string jti(ctx->Param("jti"));
                           auto record = refresh_tokens_->Get(jti);
                           if (!record.ok()) return respond(http::InternalErrorResponse());
                           // Another user's session is as invisible as an unknown one.
                           if (!*record || (*record)->user_id != user.user_id) {
                             return respond(Detail(404, "session not found"));
                           }
                           Status s = refresh_tokens_->Revoke(jti, RevokeReason::kLogout);
                           if (s.code() == StatusCode::kNotFound) {
                             return respond(Detail(404, "session not found"));
                           }
                           if (!s.ok()) return respond(http::InternalErrorResponse());
                           respond(http::Response::Empty(204));
                         },
                         HandlerThread::kRecords));

  // --- Sign-in federation, as the reference answers with OIDC disabled -----------------------

  router.Add(http::Verb::get, "/auth/oidc/providers",
             [](const http::RequestContextPtr&, http::Responder respond) {
               respond(http::Response::Json(200, "[]"));
             });
}

}  // namespace magnetar::relay
