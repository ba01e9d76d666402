#include "relay/request_auth.h"

#include "http/http_service.h"
#include "relay/auth_metrics.h"
#include "relay/json_util.h"

namespace magnetar::relay {

http::Response AuthErrorResponse(const Status& status) {
  if (status.code() == StatusCode::kPermissionDenied) return Detail(403, status.message());
  if (status.code() == StatusCode::kUnauthenticated) return Unauthorized(status.message());
  // The token could not be checked because storage is down (e.g. Redis lost): retry later.
  if (status.code() == StatusCode::kUnavailable) return Detail(503, "Storage unavailable");
  return http::InternalErrorResponse();
}

AuthOutcome AuthenticateRequest(const auth::Authenticator& authenticator,
                                const http::RequestContext& ctx,
                                std::optional<auth::Permission> required) {
  auto token = auth::ParseBearer(ctx.Header(boost::beast::http::field::authorization));
  if (!token) {
    CountAuthFailure("missing_token");
    return Unauthorized("Not authenticated");
  }
  auto result = authenticator.Authenticate(*token);
  if (!result.ok()) {
    // Storage failures are the server's, not the caller's.
    if (result.status().code() == StatusCode::kUnauthenticated ||
        result.status().code() == StatusCode::kPermissionDenied) {
      CountAuthFailure(AuthFailureReason(result.status()));
    }
    return AuthErrorResponse(result.status());
  }
  if (required) {
    if (Status s = auth::Authenticator::Require(result->user, *required); !s.ok()) {
      CountAuthFailure("permission_denied");
      return AuthErrorResponse(s);
    }
  }
  return std::move(result).value();
}

http::Handler RequireAuth(const auth::Authenticator& authenticator,
                          std::optional<auth::Permission> required, AuthedHandler handler) {
  return [&authenticator, required, handler = std::move(handler)](
             const http::RequestContextPtr& ctx, http::Responder respond) {
    auto outcome = AuthenticateRequest(authenticator, *ctx, required);
    if (auto* refusal = std::get_if<http::Response>(&outcome)) return respond(std::move(*refusal));
    handler(ctx, std::move(std::get<auth::AuthContext>(outcome)), std::move(respond));
  };
}

http::Handler RequireAuthJson(const auth::Authenticator& authenticator,
                              std::optional<auth::Permission> required, JsonAuthedHandler handler) {
  return [&authenticator, required, handler = std::move(handler)](
             const http::RequestContextPtr& ctx, http::Responder respond) {
    std::string parse_error;
    // One arena for the whole body: a bulk of 100 messages is otherwise about 700 small
    // allocations and as many frees, and freeing walks the whole tree (a third of a bulk
    // publish). Freed at once when the handler returns.
    unsigned char first_block[4096];
    json::monotonic_resource arena(first_block, sizeof first_block);
    auto body = ParseJson(ctx->request.body(), &parse_error, &arena);
    if (!body) return respond(JsonInvalidResponse(parse_error));
    auto outcome = AuthenticateRequest(authenticator, *ctx, required);
    if (auto* refusal = std::get_if<http::Response>(&outcome)) return respond(std::move(*refusal));
    handler(ctx, std::move(std::get<auth::AuthContext>(outcome)), *body, std::move(respond));
  };
}

}  // namespace magnetar::relay
