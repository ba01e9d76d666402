#pragma once

// Authentication of one relay HTTP request (spec §0.3): bearer header, JWT, deny-list, user,
// active flag, then the permission the route needs. On failure, the exact response to send.

#include <optional>
#include <variant>

#include "auth/authenticator.h"
#include "http/types.h"

namespace magnetar::relay {

// The user, or the response that refuses the request.
using AuthOutcome = std::variant<auth::AuthContext, http::Response>;

AuthOutcome AuthenticateRequest(const auth::Authenticator& authenticator,
                                const http::RequestContext& ctx,
                                std::optional<auth::Permission> required);

// Maps an auth Status to its response (401 with WWW-Authenticate, or 403).
http::Response AuthErrorResponse(const Status& status);

}  // namespace magnetar::relay
