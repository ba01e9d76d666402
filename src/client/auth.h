#pragma once

// Access tokens (spec clients.md §A.3): the strategies that obtain one (password login, refresh-
// token rotation), the TokenProvider interface the transport asks, and AuthManager, the
// thread-safe cache in front of a strategy.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "client/credentials.h"
#include "client/tls_options.h"

namespace magnetar::client {

struct AccessToken {
  std::string token;
  std::chrono::seconds expires_in{3600};
};

// A way to obtain a fresh access token. Implementations make blocking network calls.
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  virtual AccessToken authenticate() = 0;
  // "password", "refresh_token", or a custom strategy's name.
  virtual std::string strategy_name() const = 0;
};

// POST /auth/login (form: username, password, grant_type=password). A refresh token in the answer
// is saved to `store` (when given) as {relay_url, refresh_token, issued_at}; a failed save
// propagates. Throws AuthError ("pulsar-relay password authentication failed: ...").
class PasswordAuthenticator final : public Authenticator {
 public:
  PasswordAuthenticator(std::string relay_url, std::string username, std::string password,
                        std::shared_ptr<CredentialsStore> store = nullptr,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10),
                        TlsOptions tls = {});
  AccessToken authenticate() override;
  std::string strategy_name() const override { return "password"; }

 private:
  std::string relay_url_;
  std::string username_;
  std::string password_;
  std::shared_ptr<CredentialsStore> store_;
  std::chrono::milliseconds timeout_;
  TlsOptions tls_;
};

// POST /auth/token/refresh with the stored refresh token, loaded afresh on every call so that a
// rotation by another writer of the store is seen. The rotated token is saved before returning
// (a failed save propagates). A 401 leaves the store untouched and throws AuthError containing
// "rejected"; an empty store throws AuthError containing "No refresh token". The store's rotation
// lock (a file lock for CredentialsFile) is held from load to save.
class RefreshTokenAuthenticator final : public Authenticator {
 public:
  RefreshTokenAuthenticator(std::string relay_url, std::shared_ptr<CredentialsStore> store,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10),
                            TlsOptions tls = {});
  AccessToken authenticate() override;
  std::string strategy_name() const override { return "refresh_token"; }

 private:
  std::string relay_url_;
  std::shared_ptr<CredentialsStore> store_;
  std::chrono::milliseconds timeout_;
  TlsOptions tls_;
};

// What the transport and the WebSocket subscriber need: a bearer token, and a way to say "the
// server refused it". Implementations must be thread-safe.
class TokenProvider {
 public:
  virtual ~TokenProvider() = default;
  virtual std::string get_token() = 0;
  virtual void invalidate() = 0;
  // A token usable now without any I/O, when one is cached (async callers then skip a thread hop).
  virtual std::optional<std::string> cached_token() { return std::nullopt; }
};

// When a cached token counts as too old.
enum class RefreshMargin {
  // min(300 s, lifetime / 2): the same as Python for normal lifetimes, and still caches a token
  // whose whole lifetime is 300 s or less (Python re-authenticates on every call then).
  kAdaptive,
  // Exactly Python: refresh when 300 s or less are left.
  kFixed300s,
};

struct AuthManagerOptions {
  RefreshMargin margin = RefreshMargin::kAdaptive;
  // Monotonic time source (tests move it by hand). Default: std::chrono::steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> now;
};

// The access-token cache. get_token() returns the cached token while more than the margin of its
// lifetime is left; otherwise it calls the authenticator under one mutex held across the network
// call, so concurrent callers queue and one refresh serves them all (refresh tokens are single
// use: two concurrent refreshes with one token would revoke the chain). Errors from the
// authenticator propagate and leave the cache empty. invalidate() empties the cache.
class AuthManager final : public TokenProvider {
 public:
  AuthManager(std::string relay_url, std::unique_ptr<Authenticator> authenticator,
              AuthManagerOptions options = {});

  std::string get_token() override;
  void invalidate() override;
  std::optional<std::string> cached_token() override;

  // get_token() plus the lifetime the token has left.
  AccessToken get_access_token();
  std::string strategy_name() const { return authenticator_->strategy_name(); }
  const std::string& relay_url() const { return relay_url_; }

 private:
  bool valid_locked(std::chrono::steady_clock::time_point now) const;
  std::chrono::steady_clock::time_point now() const;

  std::string relay_url_;
  std::unique_ptr<Authenticator> authenticator_;
  AuthManagerOptions options_;
  mutable std::mutex mutex_;
  std::optional<std::string> token_;
  std::chrono::steady_clock::time_point expiry_{};
  std::chrono::seconds lifetime_{0};
};

// Inputs of the strategy selection (spec §A.3.4).
struct AuthConfig {
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::optional<std::filesystem::path> credentials_file;
  std::shared_ptr<CredentialsStore> credentials_store;  // wins over credentials_file
  std::chrono::milliseconds timeout = std::chrono::seconds(10);
  TlsOptions tls;
  AuthManagerOptions manager;
};

// Chooses the strategy once: an existing store → refresh token; else username and password (both
// given; empty strings count) → password login that captures its refresh token into the store;
// else std::invalid_argument. The URL is normalized first (UrlError).
std::unique_ptr<Authenticator> select_authenticator(const std::string& relay_url,
                                                    const AuthConfig& config);
std::unique_ptr<AuthManager> make_auth_manager(std::string relay_url, AuthConfig config);

}  // namespace magnetar::client
