// WS /ws handshake (spec §4.1, correction D10): every check happens before the upgrade is
// accepted, and a refusal is an HTTP 403 (what real clients observe from the reference).

#include <boost/algorithm/string/trim.hpp>

#include "relay/auth_metrics.h"
#include "relay/connection_slots.h"
#include "relay/json_util.h"
#include "relay/relay_api.h"
#include "relay/store_reads.h"
#include "relay/ws_session.h"

namespace magnetar::relay {

namespace {

// The token from `Sec-WebSocket-Protocol: bearer, bearer.<jwt>`; nullopt unless both are there.
std::optional<std::string> BearerFromSubprotocols(std::string_view header) {
  bool has_bearer = false;
  std::optional<std::string> token;
  size_t i = 0;
  while (i <= header.size()) {
    size_t comma = header.find(',', i);
    if (comma == std::string_view::npos) comma = header.size();
    std::string item(header.substr(i, comma - i));
    boost::algorithm::trim(item);
    if (item == "bearer") {
      has_bearer = true;
    } else if (!token && item.size() > 7 && item.compare(0, 7, "bearer.") == 0) {
      token = item.substr(7);
    }
    i = comma + 1;
  }
  if (!has_bearer) return std::nullopt;
  return token;
}

void Refuse(net::AnyStream stream, std::string_view reason) {
  ws::RejectUpgrade(std::move(stream), Detail(403, reason));
}

}  // namespace

void RelayApi::RegisterWebSocket(http::HttpService& service) {
  service.AddUpgrade(
      "/ws", [this, &service](const http::RequestContextPtr& ctx, net::AnyStream stream) {
        const std::string_view origin = ctx->Header(boost::beast::http::field::origin);
        if (!origin.empty() && !service.OriginAllowed(origin) && !http::IsSameOrigin(*ctx)) {
          return Refuse(std::move(stream), "Origin not permitted");
        }
        auto token =
            BearerFromSubprotocols(ctx->Header(boost::beast::http::field::sec_websocket_protocol));
        if (!token) {
          CountAuthFailure("missing_token");
          return Refuse(std::move(stream), "Missing bearer subprotocol");
        }
        // D10: the deny-list counts here too (a logged-out token cannot open a socket).
        auto held = std::make_shared<net::AnyStream>(std::move(stream));
        RunRecordWork(
            deps_, ctx->executor,
            [this, token = *token] { return deps_.authenticator.Authenticate(token); },
            // A copy, not a move: the order in which arguments are evaluated is unspecified.
            [this, ctx, held, token = *token](Result<auth::AuthContext> auth) mutable {
              AdmitWebSocket(ctx, held, std::move(auth), std::move(token));
            });
      });
}

void RelayApi::AdmitWebSocket(const http::RequestContextPtr& ctx,
                              const std::shared_ptr<net::AnyStream>& held,
                              Result<auth::AuthContext> auth, std::string token) {
  if (!auth.ok()) {
    CountAuthFailure(AuthFailureReason(auth.status()));
    const bool inactive_or_gone = auth.status().code() == StatusCode::kPermissionDenied ||
                                  auth.status().message() == "User not found";
    return Refuse(std::move(*held),
                  inactive_or_gone ? "User not found or inactive" : "Invalid or expired token");
  }
  if (!auth->user.Has(auth::Permission::kRead)) {
    CountAuthFailure("permission_denied");
    return Refuse(std::move(*held), "Permission denied: read permission required");
  }
  const std::string user_id = auth->user.user_id;
  // The cap holds across the cluster (D13): a slot first (Redis, answered on this connection's
  // executor; inline with one node), then this process's count.
  slots_->Acquire(
      "ws", user_id, options_.ws_max_per_user, ctx->executor,
      [this, ctx, held, user_id, auth = std::move(auth).value(),
       token = std::move(token)](ConnectionSlots::Outcome outcome) mutable {
        if (outcome == ConnectionSlots::Outcome::kUnavailable) {
          return ws::RejectUpgrade(std::move(*held),
                                   Detail(503, "Connection limit service unavailable"));
        }
        if (outcome == ConnectionSlots::Outcome::kFull ||
            !ws_registry_->TryAcquire(user_id, options_.ws_max_per_user)) {
          return Refuse(std::move(*held), "Too many concurrent connections");
        }
        auto conn = ws::WsConnection::Create(std::move(*held), deps_.tracker, options_.ws);
        auto session = std::make_shared<RelayWsSession>(
            deps_, options_, ws_registry_, std::move(auth), std::move(token), conn->executor());
        conn->Accept(std::move(ctx->request), "bearer", std::move(session));
      });
}

}  // namespace magnetar::relay
