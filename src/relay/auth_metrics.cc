#include "relay/auth_metrics.h"

#include <array>

#include "common/metrics.h"

namespace magnetar::relay {

namespace {

constexpr std::array<std::string_view, 8> kReasons = {
    "missing_token", "invalid_token",     "revoked_token",   "unknown_user",
    "inactive_user", "permission_denied", "bad_credentials", "invalid_refresh_token"};

}  // namespace

void CountAuthFailure(std::string_view reason) {
  // Every reason's series exists from the first failure of any (and the lookup is done once).
  static const std::array<metrics::Counter*, kReasons.size()> counters = [] {
    std::array<metrics::Counter*, kReasons.size()> out{};
    for (size_t i = 0; i < kReasons.size(); ++i) {
      out[i] = &metrics::Registry::Default().GetCounter(
          "magnetar_auth_failures_total", "Refused authentications, by reason.",
          {{"reason", std::string(kReasons[i])}});
    }
    return out;
  }();
  for (size_t i = 0; i < kReasons.size(); ++i) {
    if (kReasons[i] == reason) return counters[i]->Inc();
  }
  counters[1]->Inc();  // not one of ours: count it as an invalid token rather than lose it
}

std::string_view AuthFailureReason(const Status& status) {
  if (status.code() == StatusCode::kPermissionDenied) {
    return status.message() == "User is inactive" ? "inactive_user" : "permission_denied";
  }
  if (status.message() == "Token has been revoked") return "revoked_token";
  if (status.message() == "User not found") return "unknown_user";
  return "invalid_token";
}

}  // namespace magnetar::relay
