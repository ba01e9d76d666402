#pragma once

// The `magnetar` client commands: login, logout, whoami, topics, publish, poll, subscribe.
// The server's main() calls RunClientCommand first; it handles the client commands and the
// top-level help, and leaves everything else (`serve`, `--version`) to the server's parser.

#include <optional>

namespace magnetar::cli {

// Runs the command named by argv[1] when it is a client command (or top-level help) and returns
// its exit code; nullopt when argv is for the server.
//
// Exit codes: 0 success, 1 failure (network, server, rejected items), 2 usage (bad arguments,
// bad input), 3 authentication (not logged in, credentials refused or revoked).
std::optional<int> RunClientCommand(int argc, char** argv);

}  // namespace magnetar::cli
