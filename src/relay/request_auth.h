#pragma once

// Authentication of one relay HTTP request (spec §0.3): bearer header, JWT, deny-list, user,
// active flag, then the permission the route needs. On failure, the exact response to send.

#include <boost/json/value.hpp>
#include <functional>
#include <optional>
#include <variant>

#include "auth/authenticator.h"
#include "http/types.h"
#include "relay/relay_api.h"

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
// Where an authenticated handler runs when the engine's records are network round trips (Redis).
enum class HandlerThread {
  kRequest,  // on the request's executor (the default: anything may be used)
  kRecords,  // on the blocking pool: for handlers that call the record stores synchronously and
             // otherwise only answer (the responder is thread-safe)
};

// Wraps `handler`: refuses the request itself (401/403, spec §0.3) unless the caller is
// authenticated and has `required`. The deny-list and user reads run inline when the engine's
// records are in-process (memory, RocksDB), else on the blocking pool, the handler then running
// where `thread` says.
http::Handler RequireAuth(RelayDeps& deps, std::optional<auth::Permission> required,
                          AuthedHandler handler, HandlerThread thread = HandlerThread::kRequest);

// A route that calls the record stores synchronously and otherwise only answers: inline when
// the records are in-process, on the blocking pool when they are round trips.
http::Handler OnRecordsThread(const RelayDeps& deps, http::Handler handler);

// The same for routes with a JSON body, which is parsed first: a body that is not JSON is
// refused with 422 before authentication, as FastAPI does. The body lives in an arena that is
// freed when the handler returns: a handler reads it synchronously and copies what it keeps into
// its own types (never a json value: a copy would share the arena).
using JsonAuthedHandler = std::function<void(const http::RequestContextPtr&, auth::AuthContext,
                                             const boost::json::value& body, http::Responder)>;
http::Handler RequireAuthJson(RelayDeps& deps, std::optional<auth::Permission> required,
                              JsonAuthedHandler handler);

}  // namespace magnetar::relay
