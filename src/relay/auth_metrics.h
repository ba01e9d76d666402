#pragma once

// magnetar_auth_failures_total{reason}: refused authentications, by why, so an operator tells a
// password-guessing run (bad_credentials) from clients with stale tokens (invalid_token) or a
// misconfigured client (missing_token). Never the user name or the token: reasons are a fixed set.

#include <string_view>

#include "common/status.h"

namespace magnetar::relay {

// One of: missing_token, invalid_token, revoked_token, unknown_user, inactive_user,
// permission_denied, bad_credentials, invalid_refresh_token.
void CountAuthFailure(std::string_view reason);

// The reason for an auth::Authenticator refusal (its fixed messages), "invalid_token" otherwise.
std::string_view AuthFailureReason(const Status& status);

}  // namespace magnetar::relay
