#include "client/auth.h"

#include <boost/json/serialize.hpp>
#include <stdexcept>

#include "client/errors.h"
#include "client/http.h"
#include "client/json_util.h"
#include "client/url.h"
#include "common/log.h"

namespace magnetar::client {
namespace http = boost::beast::http;
namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("client"); }

constexpr std::chrono::seconds kRefreshBuffer{300};

detail::HttpTimeouts Timeouts(std::chrono::milliseconds t) { return {t, t}; }

// Reads access_token (required) and expires_in (default 3600) from a token response.
AccessToken ParseTokenResponse(const boost::json::object& body, const std::string& what) {
  auto token = detail::get_string(body, "access_token");
  if (!token || token->empty()) throw AuthError(what + ": the response has no access_token");
  AccessToken out;
  out.token = std::move(*token);
  out.expires_in = std::chrono::seconds(detail::get_int(body, "expires_in").value_or(3600));
  return out;
}

}  // namespace

// ---- PasswordAuthenticator ---------------------------------------------------------------------

PasswordAuthenticator::PasswordAuthenticator(std::string relay_url, std::string username,
                                             std::string password,
                                             std::shared_ptr<CredentialsStore> store,
                                             std::chrono::milliseconds timeout, TlsOptions tls)
    : relay_url_(normalize_relay_url(relay_url)),
      username_(std::move(username)),
      password_(std::move(password)),
      store_(std::move(store)),
      timeout_(timeout),
      tls_(std::move(tls)) {}

AccessToken PasswordAuthenticator::authenticate() {
  const std::string what = "pulsar-relay password authentication failed";
  detail::HttpRequest req;
  req.method = http::verb::post;
  req.target = "/auth/login";
  req.content_type = "application/x-www-form-urlencoded";
  req.body = detail::form_encode(
      {{"username", username_}, {"password", password_}, {"grant_type", "password"}});
  detail::HttpResponse resp;
  try {
    resp = detail::blocking_request(parse_relay_endpoint(relay_url_), tls_, std::move(req),
                                    Timeouts(timeout_));
  } catch (const detail::HttpError& e) {
    throw AuthError(what + ": " + e.what(), std::nullopt, /*network=*/true);
  }
  if (resp.status < 200 || resp.status >= 300) {
    throw AuthError(what + ": " + detail::status_error_text(resp, relay_url_ + "/auth/login"),
                    resp.status);
  }
  auto body = detail::parse_json_object(resp.body);
  if (!body) throw AuthError(what + ": the response is not a JSON object");
  AccessToken token = ParseTokenResponse(*body, what);
  if (auto refresh = detail::get_string(*body, "refresh_token");
      refresh && !refresh->empty() && store_) {
    store_->save(Credentials{relay_url_, *refresh, utc_now_iso(), std::nullopt, std::nullopt});
    Log()->info("Captured refresh token from /auth/login into {}", store_->label());
  }
  return token;
}

// ---- RefreshTokenAuthenticator -----------------------------------------------------------------

RefreshTokenAuthenticator::RefreshTokenAuthenticator(std::string relay_url,
                                                     std::shared_ptr<CredentialsStore> store,
                                                     std::chrono::milliseconds timeout,
                                                     TlsOptions tls)
    : relay_url_(normalize_relay_url(relay_url)),
      store_(std::move(store)),
      timeout_(timeout),
      tls_(std::move(tls)) {
  if (!store_) throw std::invalid_argument("RefreshTokenAuthenticator needs a credentials store");
}

AccessToken RefreshTokenAuthenticator::authenticate() {
  // Another process sharing the file may be rotating right now; wait for it and read its result.
  std::unique_ptr<RotationLock> lock = store_->lock_for_rotation();
  std::optional<Credentials> creds = store_->load();
  if (!creds || !creds->refresh_token || creds->refresh_token->empty()) {
    throw AuthError("No refresh token at " + store_->label() +
                    "; run `magnetar login` to bootstrap one.");
  }
  detail::HttpRequest req;
  req.method = http::verb::post;
  req.target = "/auth/token/refresh";
  req.content_type = "application/json";
  req.body = boost::json::serialize(boost::json::object{{"refresh_token", *creds->refresh_token}});
  detail::HttpResponse resp;
  try {
    resp = detail::blocking_request(parse_relay_endpoint(relay_url_), tls_, std::move(req),
                                    Timeouts(timeout_));
  } catch (const detail::HttpError& e) {
    throw AuthError(std::string("pulsar-relay refresh failed (network): ") + e.what(), std::nullopt,
                    /*network=*/true);
  }
  if (resp.status == 401) {
    throw AuthError("Refresh token rejected (revoked or expired). Re-run `magnetar login`.", 401);
  }
  if (resp.status < 200 || resp.status >= 300) {
    throw AuthError("pulsar-relay refresh failed: HTTP " + std::to_string(resp.status),
                    resp.status);
  }
  auto body = detail::parse_json_object(resp.body);
  if (!body) throw AuthError("pulsar-relay refresh failed: the response is not a JSON object");
  AccessToken token = ParseTokenResponse(*body, "pulsar-relay refresh failed");
  if (auto rotated = detail::get_string(*body, "refresh_token"); rotated && !rotated->empty()) {
    // Saved before returning: a broken persistence path must be noticed now, not by the next
    // process (which would find a token the server has already rotated away).
    store_->save(Credentials{relay_url_, *rotated, utc_now_iso(), std::nullopt, std::nullopt});
  }
  return token;
}

// ---- AuthManager -------------------------------------------------------------------------------

AuthManager::AuthManager(std::string relay_url, std::unique_ptr<Authenticator> authenticator,
                         AuthManagerOptions options)
    : relay_url_(normalize_relay_url(relay_url)),
      authenticator_(std::move(authenticator)),
      options_(std::move(options)) {
  if (!authenticator_) throw std::invalid_argument("AuthManager needs an authenticator");
}

std::chrono::steady_clock::time_point AuthManager::now() const {
  return options_.now ? options_.now() : std::chrono::steady_clock::now();
}

bool AuthManager::valid_locked(std::chrono::steady_clock::time_point now) const {
  if (!token_) return false;
  std::chrono::seconds margin = kRefreshBuffer;
  if (options_.margin == RefreshMargin::kAdaptive) margin = std::min(kRefreshBuffer, lifetime_ / 2);
  return expiry_ - now > margin;
}

std::string AuthManager::get_token() { return get_access_token().token; }

AccessToken AuthManager::get_access_token() {
  std::lock_guard lock(mutex_);
  if (valid_locked(now())) {
    return {*token_, std::chrono::duration_cast<std::chrono::seconds>(expiry_ - now())};
  }
  Log()->debug("Fetching a fresh access token from {}", relay_url_);
  token_.reset();
  AccessToken fresh = authenticator_->authenticate();
  token_ = fresh.token;
  lifetime_ = fresh.expires_in;
  expiry_ = now() + fresh.expires_in;
  Log()->info("Acquired relay access token (expires in {}s)", fresh.expires_in.count());
  return fresh;
}

std::optional<std::string> AuthManager::cached_token() {
  std::unique_lock lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock() || !valid_locked(now())) return std::nullopt;
  return token_;
}

void AuthManager::invalidate() {
  std::lock_guard lock(mutex_);
  token_.reset();
  Log()->debug("Invalidated relay access token cache");
}

// ---- selection ---------------------------------------------------------------------------------

std::unique_ptr<Authenticator> select_authenticator(const std::string& relay_url,
                                                    const AuthConfig& config) {
  const std::string url = normalize_relay_url(relay_url);
  std::shared_ptr<CredentialsStore> store = config.credentials_store;
  if (!store && config.credentials_file) {
    store = std::make_shared<CredentialsFile>(*config.credentials_file);
  }
  if (store && store->exists()) {
    return std::make_unique<RefreshTokenAuthenticator>(url, store, config.timeout, config.tls);
  }
  if (config.username && config.password) {
    return std::make_unique<PasswordAuthenticator>(url, *config.username, *config.password, store,
                                                   config.timeout, config.tls);
  }
  throw std::invalid_argument(
      "RelayAuthManager needs either an Authenticator, a credentials file/store, or "
      "username+password.");
}

std::unique_ptr<AuthManager> make_auth_manager(std::string relay_url, AuthConfig config) {
  auto authenticator = select_authenticator(relay_url, config);
  return std::make_unique<AuthManager>(std::move(relay_url), std::move(authenticator),
                                       std::move(config.manager));
}

}  // namespace magnetar::client
