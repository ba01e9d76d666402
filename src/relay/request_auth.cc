#include "relay/request_auth.h"

#include "http/http_service.h"
#include "relay/json_util.h"

namespace magnetar::relay {

http::Response AuthErrorResponse(const Status& status) {
  if (status.code() == StatusCode::kPermissionDenied) return Detail(403, status.message());
  if (status.code() == StatusCode::kUnauthenticated) return Unauthorized(status.message());
  return http::InternalErrorResponse();
}

AuthOutcome AuthenticateRequest(const auth::Authenticator& authenticator,
                                const http::RequestContext& ctx,
                                std::optional<auth::Permission> required) {
  auto token = auth::ParseBearer(ctx.Header(boost::beast::http::field::authorization));
  if (!token) return Unauthorized("Not authenticated");
  auto result = authenticator.Authenticate(*token);
  if (!result.ok()) return AuthErrorResponse(result.status());
  if (required) {
    if (Status s = auth::Authenticator::Require(result->user, *required); !s.ok()) {
      return AuthErrorResponse(s);
    }
  }
  return std::move(result).value();
}

}  // namespace magnetar::relay
