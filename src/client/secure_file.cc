#include "client/secure_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace magnetar::client::detail {
namespace {

std::system_error Errno(const std::string& what) {
  return std::system_error(errno, std::generic_category(), what);
}

// Closes a descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

void create_private_directories(const std::filesystem::path& dir) {
  if (dir.empty()) return;
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return;
  create_private_directories(dir.parent_path() == dir ? std::filesystem::path()
                                                      : dir.parent_path());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw Errno("cannot create directory " + dir.string());
  }
}

std::optional<mode_t> lstat_mode(const std::filesystem::path& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return std::nullopt;
  return st.st_mode & 07777;
}

void atomic_write(const std::filesystem::path& path, std::string_view content,
                  const std::string& temp_prefix) {
  const std::filesystem::path dir = path.parent_path().empty() ? "." : path.parent_path();
  std::string templ = (dir / (temp_prefix + "XXXXXX")).string();
  std::vector<char> name(templ.begin(), templ.end());
  name.push_back('\0');
  Fd file{::mkostemp(name.data(), O_CLOEXEC)};
  if (file.fd < 0) throw Errno("cannot create a temporary file in " + dir.string());
  const std::string tmp(name.data());
  try {
    // 0600 before any byte is written: the secret is never readable by others, whatever the umask.
    if (::fchmod(file.fd, 0600) != 0) throw Errno("cannot chmod " + tmp);
    size_t done = 0;
    while (done < content.size()) {
      ssize_t n = ::write(file.fd, content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw Errno("cannot write " + tmp);
      done += static_cast<size_t>(n);
    }
    if (::fsync(file.fd) != 0) throw Errno("cannot fsync " + tmp);
    if (::close(file.fd) != 0) {
      file.fd = -1;
      throw Errno("cannot close " + tmp);
    }
    file.fd = -1;
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      throw Errno("cannot rename onto " + path.string());
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  // The rename is durable once the directory entry is: best effort, as in the Python package.
  Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd >= 0) ::fsync(d.fd);
}

std::optional<ReadResult> read_file(const std::filesystem::path& path, bool no_follow,
                                    std::size_t max_bytes, std::error_code& ec) {
  ec.clear();
  Fd file{::open(path.c_str(), O_RDONLY | O_CLOEXEC | (no_follow ? O_NOFOLLOW : 0))};
  if (file.fd < 0) {
    ec = std::error_code(errno, std::generic_category());
    return std::nullopt;
  }
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) {
    ec = std::error_code(errno, std::generic_category());
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return std::nullopt;
  }
  if (static_cast<std::size_t>(st.st_size) > max_bytes) {
    ec = std::make_error_code(std::errc::file_too_large);
    return std::nullopt;
  }
  ReadResult out;
  out.mode = st.st_mode & 07777;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(file.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ec = std::error_code(errno, std::generic_category());
      return std::nullopt;
    }
    if (n == 0) break;
    out.content.append(buf, static_cast<size_t>(n));
    if (out.content.size() > max_bytes) {
      ec = std::make_error_code(std::errc::file_too_large);
      return std::nullopt;
    }
  }
  return out;
}

}  // namespace magnetar::client::detail
