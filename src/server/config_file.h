#pragma once

// The TOML configuration file. Its keys are the `serve` option names (`port = 9100`,
// `max-body-bytes = 2097152`; `_` and `-` are the same). Each key becomes the matching
// MAGNETAR_<NAME> environment variable unless that is already set, so the precedence is: command
// line, environment, file, default.

#include <string>

#include "common/status.h"

namespace magnetar::server {

// The file named by `--config FILE` / `--config=FILE` in argv, else MAGNETAR_CONFIG; "" if none.
std::string FindConfigPath(int argc, char** argv);

// Reads `path` and exports its keys (see above). Arrays become comma-separated lists.
Status LoadConfigFile(const std::string& path);

}  // namespace magnetar::server
