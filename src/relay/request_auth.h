#pragma once

// Authentication of one relay HTTP request (spec §0.3): bearer header, JWT, deny-list, user,
// active flag, then the permission the route needs. On failure, the exact response to send.

#include <boost/json/value.hpp>
#include <functional>
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

// A route handler that runs only for an authenticated caller.
using AuthedHandler =
    std::function<void(const http::RequestContextPtr&, auth::AuthContext, http::Responder)>;
// Wraps `handler`: refuses the request itself (401/403, spec §0.3) unless the caller is
// authenticated and has `required`.
http::Handler RequireAuth(const auth::Authenticator& authenticator,
                          std::optional<auth::Permission> required, AuthedHandler handler);

// The same for routes with a JSON body, which is parsed first: a body that is not JSON is
// refused with 422 before authentication, as FastAPI does. The body lives in an arena that is
// freed when the handler returns: a handler reads it synchronously and copies what it keeps into
// its own types (never a json value: a copy would share the arena).
using JsonAuthedHandler = std::function<void(const http::RequestContextPtr&, auth::AuthContext,
                                             const boost::json::value& body, http::Responder)>;
http::Handler RequireAuthJson(const auth::Authenticator& authenticator,
                              std::optional<auth::Permission> required, JsonAuthedHandler handler);

}  // namespace magnetar::relay
