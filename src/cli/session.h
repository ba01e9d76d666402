#pragma once

// What every client command needs: which relay (--url, MAGNETAR_URL, or the URL stored at
// login), which credentials file (--credentials, MAGNETAR_CREDENTIALS, or
// $XDG_CONFIG_HOME/magnetar/relay_credentials.json), TLS settings, and bearer tokens.
//
// Tokens: each command is a new process, and refresh tokens rotate on every use (and the relay
// rate-limits refreshes), so the access token is cached beside the credentials file
// (`.<name>.access`, mode 0600, written atomically) and reused until a minute before it expires.
// Refreshes take the credentials file's lock, so concurrent commands never present the same
// single-use refresh token twice.

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "client/auth.h"
#include "client/credentials.h"
#include "client/tls_options.h"

namespace magnetar::cli {

// Bad arguments or input: exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// No credentials to work with: exit code 3.
class NotLoggedIn : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CommonOptions {
  std::string url;
  std::string credentials;
  bool json = false;
  std::string ca_file;
  bool insecure = false;
  bool verbose = false;
};

// The access token cache file for a credentials file.
std::filesystem::path AccessCachePath(const std::filesystem::path& credentials);

class Session {
 public:
  explicit Session(CommonOptions options);

  const CommonOptions& options() const { return options_; }
  const std::filesystem::path& credentials_path() const { return credentials_path_; }
  client::CredentialsFile& credentials() { return *file_; }
  std::shared_ptr<client::CredentialsFile> credentials_ptr() { return file_; }

  // The relay URL, normalized: --url / MAGNETAR_URL, else the one stored at login. Throws
  // UsageError when there is none, client::UrlError when it is invalid.
  std::string url();
  client::TlsOptions tls() const;

  // Bearer tokens: the credentials file (refresh token), else MAGNETAR_USERNAME and
  // MAGNETAR_PASSWORD (password login). Throws NotLoggedIn when neither is there.
  std::shared_ptr<client::TokenProvider> tokens();

  // Remembers a fresh access token (after login) so the next command starts with it.
  void cache_access_token(const std::string& url, const std::string& token,
                          std::chrono::seconds expires_in);
  void forget_access_token();
  // The cached access token when still valid for `url`.
  std::optional<std::string> cached_access_token(const std::string& url) const;

 private:
  CommonOptions options_;
  std::filesystem::path credentials_path_;
  std::shared_ptr<client::CredentialsFile> file_;
  std::shared_ptr<client::TokenProvider> tokens_;
};

}  // namespace magnetar::cli
