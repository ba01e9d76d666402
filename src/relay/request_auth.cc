#include "relay/request_auth.h"

#include "http/http_service.h"
#include "relay/auth_metrics.h"
#include "relay/json_util.h"
#include "relay/store_reads.h"

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

namespace {

// Answers the refusal, or hands the authenticated caller (and the body, if any) to `handler`.
template <typename Handler, typename... Body>
void Proceed(const Handler& handler, const http::RequestContextPtr& ctx, AuthOutcome& outcome,
             http::Responder& respond, const Body&... body) {
  if (auto* refusal = std::get_if<http::Response>(&outcome)) return respond(std::move(*refusal));
  handler(ctx, std::move(std::get<auth::AuthContext>(outcome)), body..., std::move(respond));
}

// A body parsed into an arena that lives as long as this does.
struct ArenaBody {
  explicit ArenaBody(size_t initial) : arena(initial) {}
  json::monotonic_resource arena;
  std::optional<json::value> value;  // moved in whole, so it keeps the arena as its storage
};

}  // namespace

http::Handler RequireAuth(RelayDeps& deps, std::optional<auth::Permission> required,
                          AuthedHandler handler, HandlerThread thread) {
  if (thread == HandlerThread::kRecords) {
    // Authentication and handler in one go, wherever the records are read.
    return OnRecordsThread(deps, [&deps, required, handler = std::move(handler)](
                                     const http::RequestContextPtr& ctx, http::Responder respond) {
      auto outcome = AuthenticateRequest(deps.authenticator, *ctx, required);
      Proceed(handler, ctx, outcome, respond);
    });
  }
  return [&deps, required, handler = std::move(handler)](const http::RequestContextPtr& ctx,
                                                         http::Responder respond) {
    RunRecordWork(
        deps, ctx->executor,
        [&deps, ctx, required] { return AuthenticateRequest(deps.authenticator, *ctx, required); },
        [&handler, ctx, respond = std::move(respond)](AuthOutcome outcome) mutable {
          Proceed(handler, ctx, outcome, respond);
        });
  };
}

http::Handler OnRecordsThread(const RelayDeps& deps, http::Handler handler) {
  return [&deps, handler = std::move(handler)](const http::RequestContextPtr& ctx,
                                               http::Responder respond) {
    if (!deps.records_remote) return handler(ctx, std::move(respond));
    deps.blocking.Post([&handler, ctx, respond = std::move(respond)]() mutable {
      handler(ctx, std::move(respond));
    });
  };
}

http::Handler RequireAuthJson(RelayDeps& deps, std::optional<auth::Permission> required,
                              JsonAuthedHandler handler) {
  return [&deps, required, handler = std::move(handler)](const http::RequestContextPtr& ctx,
                                                         http::Responder respond) {
    std::string parse_error;
    if (deps.records_remote) {
      // The body waits for the authentication round trips in its own arena.
      auto body = std::make_shared<ArenaBody>(ctx->request.body().size() * 2 + 1024);
      auto parsed = ParseJson(ctx->request.body(), &parse_error, &body->arena);
      if (!parsed) return respond(JsonInvalidResponse(parse_error));
      body->value.emplace(std::move(*parsed));
      return deps.blocking.Run(
          ctx->executor,
          [&deps, ctx, required] {
            return AuthenticateRequest(deps.authenticator, *ctx, required);
          },
          [&handler, ctx, body, respond = std::move(respond)](AuthOutcome outcome) mutable {
            Proceed(handler, ctx, outcome, respond, *body->value);
          });
    }
    // One arena for the whole body: a bulk of 100 messages is otherwise about 700 small
    // allocations and as many frees, and freeing walks the whole tree (a third of a bulk
    // publish). Freed at once when the handler returns.
    unsigned char first_block[4096];
    json::monotonic_resource arena(first_block, sizeof first_block);
    auto body = ParseJson(ctx->request.body(), &parse_error, &arena);
    if (!body) return respond(JsonInvalidResponse(parse_error));
    auto outcome = AuthenticateRequest(deps.authenticator, *ctx, required);
    Proceed(handler, ctx, outcome, respond, *body);
  };
}

}  // namespace magnetar::relay
