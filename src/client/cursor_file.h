#pragma once

// The transport's cursor file (spec clients.md §A.5.6; internal): one JSON object mapping topic
// names to the last message id seen, e.g. {"setup": "msg-100", "status": "msg-7"}.

#include <filesystem>
#include <map>
#include <string>

namespace magnetar::client::detail {

// Reads the file. A missing file, any read or parse error, or JSON that is not an object gives an
// empty map (errors are logged, never thrown). Falsy values ("", null, 0, false) are dropped and
// other values become strings (5 -> "5").
std::map<std::string, std::string> load_cursor_file(const std::filesystem::path& path);

// Replaces the file atomically (temporary `.pulsar-relay-cursor-XXXXXX`, mode 0600 before
// writing, fsync, rename, directory fsync), creating missing parent directories (mode 0700).
// Failures are logged and reported by the return value, never thrown.
bool persist_cursor_file(const std::filesystem::path& path,
                         const std::map<std::string, std::string>& cursors);

}  // namespace magnetar::client::detail
