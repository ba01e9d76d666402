#pragma once

// File helpers shared by the credentials file, the cursor file and the CLI's token cache:
// private directories, atomic durable replacement, bounded reads that can refuse symlinks.

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace magnetar::client::detail {

// Creates `dir` and its missing parents, each new one with mode 0700. Throws std::system_error.
void create_private_directories(const std::filesystem::path& dir);

// lstat's permission bits of `dir` (a symlink reports 0777); nullopt when lstat fails.
std::optional<mode_t> lstat_mode(const std::filesystem::path& dir);

// True when group or others may write (mode & 022).
inline bool group_or_world_writable(mode_t mode) { return (mode & 022) != 0; }

// Replaces `path` with `content` atomically and durably: a unique temporary `<prefix>XXXXXX` in
// the same directory, mode 0600 set before the first byte, write + fsync, rename over `path`,
// then fsync of the directory (best effort). On failure the temporary is removed and
// std::system_error is thrown. The parent directory must exist.
void atomic_write(const std::filesystem::path& path, std::string_view content,
                  const std::string& temp_prefix);

struct ReadResult {
  std::string content;
  mode_t mode = 0;  // permission bits of the file read
};

// Reads a whole regular file of at most `max_bytes`. With `no_follow`, a symlink at `path` fails
// with ELOOP (O_NOFOLLOW). Errors come back in `ec`.
std::optional<ReadResult> read_file(const std::filesystem::path& path, bool no_follow,
                                    std::size_t max_bytes, std::error_code& ec);

}  // namespace magnetar::client::detail
