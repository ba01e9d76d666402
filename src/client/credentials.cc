#include "client/credentials.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "client/pyjson.h"
#include "client/secure_file.h"
#include "common/log.h"

namespace magnetar::client {
namespace json = boost::json;
namespace {

constexpr std::size_t kMaxCredentialsBytes = 1 << 20;

std::shared_ptr<spdlog::logger> Log() { return Logger("client"); }

std::string Octal(mode_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0%o", static_cast<unsigned>(mode));
  return buf;
}

class FileRotationLock final : public RotationLock {
 public:
  explicit FileRotationLock(int fd) : fd_(fd) {}
  ~FileRotationLock() override {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }

 private:
  int fd_;
};

std::filesystem::path LockPath(const std::filesystem::path& path) {
  return path.parent_path() / ("." + path.filename().string() + ".lock");
}

}  // namespace

std::string utc_now_iso() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const auto micros = duration_cast<microseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(micros / 1'000'000);
  const long frac = static_cast<long>(micros % 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  // Python's isoformat() leaves the fraction out when it is zero.
  if (frac == 0) {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d+00:00", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ld+00:00", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  }
  return buf;
}

std::string credentials_to_json(const Credentials& c) {
  json::object obj;
  obj["relay_url"] = c.relay_url;
  obj["refresh_token"] = c.refresh_token ? json::value(*c.refresh_token) : json::value(nullptr);
  obj["issued_at"] = c.issued_at;
  if (c.access_token) {
    obj["access_token"] = *c.access_token;
    obj["expires_in"] = c.expires_in ? json::value(*c.expires_in) : json::value(nullptr);
  }
  return detail::python_json_dumps(obj, 2, true);
}

std::optional<Credentials> credentials_from_json(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const json::object& obj = v.get_object();
  auto str = [&](const char* key) -> std::optional<std::string> {
    if (const json::value* f = obj.if_contains(key); f && f->is_string()) {
      return std::string(f->get_string());
    }
    return std::nullopt;
  };
  Credentials c;
  c.relay_url = str("relay_url").value_or("");
  c.refresh_token = str("refresh_token");
  c.issued_at = str("issued_at").value_or("");
  c.access_token = str("access_token");
  if (const json::value* f = obj.if_contains("expires_in")) {
    if (f->is_int64()) c.expires_in = f->get_int64();
    if (f->is_uint64()) c.expires_in = static_cast<std::int64_t>(f->get_uint64());
    if (f->is_double()) c.expires_in = static_cast<std::int64_t>(f->get_double());
  }
  return c;
}

// ---- CredentialsFile ---------------------------------------------------------------------------

CredentialsFile::CredentialsFile(std::filesystem::path path)
    : path_(std::filesystem::absolute(path).lexically_normal()) {}

bool CredentialsFile::exists() const {
  std::error_code ec;
  return std::filesystem::is_regular_file(path_, ec);
}

std::optional<Credentials> CredentialsFile::load() const {
  if (!exists()) return std::nullopt;
  const std::filesystem::path dir = path_.parent_path();
  // lstat: a symlinked parent reports 0777 and is refused too. If lstat fails, the open below
  // reports the problem.
  if (auto mode = detail::lstat_mode(dir); mode && detail::group_or_world_writable(*mode)) {
    Log()->error(
        "Refusing to read relay credentials {}: directory {} has mode {} (group- or "
        "world-writable); use 0700 or 0750",
        path_.string(), dir.string(), Octal(*mode));
    return std::nullopt;
  }
  std::error_code ec;
  auto read = detail::read_file(path_, /*no_follow=*/true, kMaxCredentialsBytes, ec);
  if (!read) {
    if (ec == std::errc::too_many_symbolic_link_levels) {
      Log()->error("Refusing to read relay credentials {}: it is a symlink", path_.string());
    } else {
      Log()->error("Failed to read relay credentials at {}: {}", path_.string(), ec.message());
    }
    return std::nullopt;
  }
  if (read->mode & 077) {
    Log()->warn("Relay credentials file {} has mode {}; recommended is 0600.", path_.string(),
                Octal(read->mode));
  }
  auto parsed = credentials_from_json(read->content);
  if (!parsed) {
    Log()->error("Failed to read relay credentials at {}: not a JSON object", path_.string());
  }
  return parsed;
}

void CredentialsFile::save(const Credentials& credentials) {
  const std::filesystem::path dir = path_.parent_path();
  detail::create_private_directories(dir);
  if (auto mode = detail::lstat_mode(dir); mode && detail::group_or_world_writable(*mode)) {
    throw std::system_error(
        std::make_error_code(std::errc::permission_denied),
        "refusing to write relay credentials " + path_.string() + ": directory " + dir.string() +
            " is group- or world-writable (mode " + Octal(*mode) + "); use 0700 or 0750");
  }
  detail::atomic_write(path_, credentials_to_json(credentials), ".pulsar-relay-cred-");
}

std::unique_ptr<RotationLock> CredentialsFile::lock_for_rotation() {
  // Best effort: when the lock file cannot be made (read-only directory), rotate unlocked, as the
  // Python package always does.
  try {
    detail::create_private_directories(path_.parent_path());
  } catch (const std::system_error&) {
    return nullptr;
  }
  const std::filesystem::path lock_path = LockPath(path_);
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return nullptr;
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      ::close(fd);
      return nullptr;
    }
  }
  return std::make_unique<FileRotationLock>(fd);
}

bool CredentialsFile::remove() {
  std::error_code ec;
  std::filesystem::remove(LockPath(path_), ec);
  return std::filesystem::remove(path_, ec);
}

// ---- InMemoryCredentialsStore ------------------------------------------------------------------

InMemoryCredentialsStore::InMemoryCredentialsStore(std::string relay_url, std::string refresh_token,
                                                   std::function<void(const Credentials&)> on_save,
                                                   std::string label)
    : on_save_(std::move(on_save)), label_(std::move(label)) {
  record_.relay_url = std::move(relay_url);
  record_.refresh_token = std::move(refresh_token);
  record_.issued_at = utc_now_iso();
}

bool InMemoryCredentialsStore::exists() const {
  std::lock_guard lock(mutex_);
  return record_.refresh_token && !record_.refresh_token->empty();
}

std::optional<Credentials> InMemoryCredentialsStore::load() const {
  std::lock_guard lock(mutex_);
  if (!record_.refresh_token || record_.refresh_token->empty()) return std::nullopt;
  return record_;
}

void InMemoryCredentialsStore::save(const Credentials& credentials) {
  {
    std::lock_guard lock(mutex_);
    record_ = credentials;
  }
  if (!on_save_) return;
  try {
    on_save_(credentials);
  } catch (const std::exception& e) {
    // The rotated token is held in memory and keeps serving this process; the embedder's
    // persistence failed, which it must hear about loudly.
    Log()->error("on_save callback failed for refresh-token rotation at {}: {}", label_, e.what());
  } catch (...) {
    Log()->error("on_save callback failed for refresh-token rotation at {}", label_);
  }
}

}  // namespace magnetar::client
