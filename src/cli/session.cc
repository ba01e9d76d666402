#include "cli/session.h"

#include <boost/json.hpp>
#include <cstdlib>

#include "client/json_util.h"
#include "client/secure_file.h"
#include "client/url.h"

namespace magnetar::cli {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

constexpr auto kCacheMargin = 60s;  // a cached token with less left than this is not used

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

fs::path DefaultCredentialsPath() {
  if (std::string xdg = Env("XDG_CONFIG_HOME"); !xdg.empty()) {
    return fs::path(xdg) / "magnetar" / "relay_credentials.json";
  }
  if (std::string home = Env("HOME"); !home.empty()) {
    return fs::path(home) / ".config" / "magnetar" / "relay_credentials.json";
  }
  throw UsageError(
      "cannot find a place for credentials: set HOME or XDG_CONFIG_HOME, or pass --credentials "
      "FILE");
}

std::int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The on-disk access token, shared by the commands that run one after another.
struct CachedToken {
  std::string relay_url;
  std::string token;
  std::int64_t expires_at = 0;  // Unix seconds (wall clock: it outlives the process)
};

std::optional<CachedToken> ReadCache(const fs::path& path) {
  // The same refusals as the credentials file: no symlink, no writable parent.
  if (auto mode = client::detail::lstat_mode(path.parent_path());
      mode && client::detail::group_or_world_writable(*mode)) {
    return std::nullopt;
  }
  std::error_code ec;
  auto read = client::detail::read_file(path, /*no_follow=*/true, 64 * 1024, ec);
  if (!read) return std::nullopt;
  auto obj = client::detail::parse_json_object(read->content);
  if (!obj) return std::nullopt;
  CachedToken c;
  c.relay_url = client::detail::get_string(*obj, "relay_url").value_or("");
  c.token = client::detail::get_string(*obj, "access_token").value_or("");
  c.expires_at = client::detail::get_int(*obj, "expires_at").value_or(0);
  if (c.token.empty()) return std::nullopt;
  return c;
}

void WriteCache(const fs::path& path, const CachedToken& c) {
  try {
    client::detail::create_private_directories(path.parent_path());
    if (auto mode = client::detail::lstat_mode(path.parent_path());
        mode && client::detail::group_or_world_writable(*mode)) {
      return;
    }
    json::object obj{
        {"relay_url", c.relay_url}, {"access_token", c.token}, {"expires_at", c.expires_at}};
    client::detail::atomic_write(path, json::serialize(obj), ".magnetar-access-");
  } catch (const std::exception&) {
    // Only a cache: the next command refreshes instead.
  }
}

// A TokenProvider that starts from the on-disk cache and falls back to the AuthManager.
class CachedTokenProvider final : public client::TokenProvider {
 public:
  CachedTokenProvider(fs::path cache, std::string url, std::unique_ptr<client::AuthManager> inner)
      : cache_(std::move(cache)), url_(std::move(url)), inner_(std::move(inner)) {}

  std::string get_token() override {
    std::lock_guard lock(mutex_);
    if (!invalidated_) {
      if (auto c = ReadCache(cache_); c && Usable(*c)) return c->token;
    }
    client::AccessToken fresh = inner_->get_access_token();
    WriteCache(cache_, {url_, fresh.token, UnixNow() + fresh.expires_in.count()});
    return fresh.token;
  }

  void invalidate() override {
    {
      std::lock_guard lock(mutex_);
      invalidated_ = true;
      std::error_code ec;
      fs::remove(cache_, ec);
    }
    inner_->invalidate();
  }

  std::optional<std::string> cached_token() override {
    std::unique_lock lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock()) return std::nullopt;
    if (!invalidated_) {
      if (auto c = ReadCache(cache_); c && Usable(*c)) return c->token;
    }
    return inner_->cached_token();
  }

 private:
  bool Usable(const CachedToken& c) const {
    return c.relay_url == url_ && c.expires_at - UnixNow() > kCacheMargin.count();
  }

  fs::path cache_;
  std::string url_;
  std::unique_ptr<client::AuthManager> inner_;
  std::mutex mutex_;
  bool invalidated_ = false;
};

}  // namespace

fs::path AccessCachePath(const fs::path& credentials) {
  return credentials.parent_path() / ("." + credentials.filename().string() + ".access");
}

Session::Session(CommonOptions options) : options_(std::move(options)) {
  if (options_.url.empty()) options_.url = Env("MAGNETAR_URL");
  if (options_.credentials.empty()) options_.credentials = Env("MAGNETAR_CREDENTIALS");
  credentials_path_ =
      options_.credentials.empty() ? DefaultCredentialsPath() : fs::absolute(options_.credentials);
  file_ = std::make_shared<client::CredentialsFile>(credentials_path_);
}

std::string Session::url() {
  if (!options_.url.empty()) return client::normalize_relay_url(options_.url);
  if (auto c = file_->load(); c && !c->relay_url.empty()) {
    return client::normalize_relay_url(c->relay_url);
  }
  throw UsageError("no relay URL: pass --url URL (or set MAGNETAR_URL), or log in first");
}

client::TlsOptions Session::tls() const {
  client::TlsOptions t;
  t.ca_file = options_.ca_file;
  t.verify = !options_.insecure;
  return t;
}

std::shared_ptr<client::TokenProvider> Session::tokens() {
  if (tokens_) return tokens_;
  const std::string relay = url();
  client::AuthConfig config;
  config.credentials_store = file_;
  config.tls = tls();
  const std::string user = Env("MAGNETAR_USERNAME");
  const std::string password = Env("MAGNETAR_PASSWORD");
  if (!user.empty() && !password.empty()) {
    config.username = user;
    config.password = password;
  }
  if (!file_->exists() && !config.username) {
    throw NotLoggedIn("not logged in: no credentials at " + credentials_path_.string() +
                      "; run `magnetar login` (or set MAGNETAR_USERNAME and MAGNETAR_PASSWORD)");
  }
  tokens_ = std::make_shared<CachedTokenProvider>(AccessCachePath(credentials_path_), relay,
                                                  client::make_auth_manager(relay, config));
  return tokens_;
}

void Session::cache_access_token(const std::string& url, const std::string& token,
                                 std::chrono::seconds expires_in) {
  WriteCache(AccessCachePath(credentials_path_), {url, token, UnixNow() + expires_in.count()});
}

void Session::forget_access_token() {
  std::error_code ec;
  fs::remove(AccessCachePath(credentials_path_), ec);
}

std::optional<std::string> Session::cached_access_token(const std::string& url) const {
  auto c = ReadCache(AccessCachePath(credentials_path_));
  if (!c || c->relay_url != url || c->expires_at - UnixNow() <= kCacheMargin.count()) {
    return std::nullopt;
  }
  return c->token;
}

}  // namespace magnetar::cli
