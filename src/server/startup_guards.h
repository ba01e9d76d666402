#pragma once

// Startup guards (relay spec §8.3, adapted to Magnetar's safe defaults): settings that would make
// the server unsafe to expose are refused at start, with a message naming each problem and its
// fix, unless --allow-insecure-defaults is given, which starts anyway and logs a WARNING per
// bypassed guard on every start. Secrets never appear in the messages.
//
// What is refused (and why the defaults are not):
//   jwt-secret-default     the JWT secret is the reference's published default
//                          ("your-secret-key-here-change-in-production"): anyone can mint tokens
//   jwt-secret-short       a JWT secret shorter than 32 characters (unset is fine: a random one
//                          is used per start)
//   bootstrap-admin-password / bootstrap-admin-username
//                          only one half of the bootstrap admin is given (none at all is fine:
//                          `admin` gets a random password in a 0600 file)
//   trusted-hosts-empty    the trusted hosts are explicitly set to an empty list (the reference
//                          then refuses every request; unset means the loopback names)
//   trusted-hosts-any      trusted hosts include `*` while listening on a non-loopback address
//   allowed-origins-any    allowed origins include `*` (any web page may call the API and open
//                          WebSockets from its visitors' browsers) while listening on a
//                          non-loopback address
// On a loopback address a `*` in either list only logs an INSECURE warning: nothing outside the
// machine can reach the server.

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "server/config.h"

namespace magnetar::server {

// The JWT secret the reference server ships with (spec §8.2).
inline constexpr std::string_view kReferenceDefaultJwtSecret =
    "your-secret-key-here-change-in-production";
inline constexpr size_t kMinJwtSecretChars = 32;

struct GuardFinding {
  std::string id;       // stable name, e.g. "jwt-secret-short"
  std::string problem;  // what is wrong; never contains a secret
  std::string fix;      // what to change
};

// Every guard `config` trips, in a fixed order. Pure: no logging, no environment.
std::vector<GuardFinding> CheckStartupGuards(const ServeConfig& config);

// Runs the guards: Ok when none trips; InvalidArgument (a multi-line message listing every
// finding with its fix; main() exits 2) when some trip and insecure defaults are not allowed;
// Ok plus one WARNING log line per finding when they are.
Status EnforceStartupGuards(const ServeConfig& config);

// True for addresses only this machine can reach: 127.0.0.0/8, ::1, "localhost".
bool IsLoopbackHost(std::string_view host);

}  // namespace magnetar::server
