#pragma once

// Device-flow login (RFC 8628 plus the relay's pair=true extension; spec clients.md §A.4).
//
//   CredentialsFile file(path);
//   DeviceFlowResult r = DeviceFlow(url, file, {}).run();   // prints the banner, waits, saves
//
// run() blocks until the person approves (or the code expires): it asks for a device code, shows
// the verification URI, then polls /auth/device/token every interval (the first poll after one
// interval; slow_down adds 5 s for good). On success the primary refresh token is saved to the
// store; a pair's secondary token is only returned.

#include <chrono>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "client/credentials.h"
#include "client/tls_options.h"

namespace magnetar::client {

struct DeviceFlowOptions {
  std::string client_hint = "pulsar-config";
  std::chrono::milliseconds timeout = std::chrono::seconds(10);  // each HTTP request
  std::chrono::seconds max_wait{600};  // the local deadline is min(expires_in, max_wait)
  bool pair = false;                   // ask for a second, independent refresh token
  // Shows (verification_uri_complete, user_code). Default: print_device_banner to stderr.
  std::function<void(std::string_view uri, std::string_view code)> on_user_code;
  // Waits between polls (tests pass one that records and returns). Default: a real wait that the
  // stop token interrupts.
  std::function<void(std::chrono::seconds)> sleep;
  // Monotonic time for the deadline. Default: std::chrono::steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> now;
  TlsOptions tls;
};

struct DeviceFlowResult : Credentials {
  std::optional<std::string> refresh_token_secondary;  // only with pair = true; never saved
};

// The banner a person sees, exactly as the Python package writes it: an empty line, a rule of 64
// '=', "  Visit:  <uri>", "  Code:   <code>", an empty line, a two-line note, the rule again.
std::string device_banner(std::string_view verification_uri, std::string_view user_code);
// Writes device_banner() to standard error and flushes.
void print_device_banner(std::string_view verification_uri, std::string_view user_code);

class DeviceFlow {
 public:
  // `store` must outlive the flow. The URL is normalized (UrlError).
  DeviceFlow(std::string relay_url, CredentialsStore& store, DeviceFlowOptions options = {});

  // Throws DeviceFlowError (code() = "access_denied", "expired_token", ... or "" for local
  // failures such as the deadline or a network error), or what the store's save() throws.
  DeviceFlowResult run(std::stop_token stop = {});

 private:
  std::string relay_url_;
  CredentialsStore& store_;
  DeviceFlowOptions options_;
};

}  // namespace magnetar::client
