#include "server/startup_guards.h"

#include <boost/asio/ip/address.hpp>

#include <algorithm>

#include "common/log.h"

namespace magnetar::server {

namespace {

bool Contains(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

}  // namespace

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost") return true;
  std::string h(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(h, ec);
  return !ec && address.is_loopback();
}

std::vector<GuardFinding> CheckStartupGuards(const ServeConfig& c) {
  std::vector<GuardFinding> out;
  const std::string secret_fix =
      "set --jwt-secret-key (or MAGNETAR_JWT_SECRET_KEY / PULSAR_JWT_SECRET_KEY) to a random "
      "string of at least 32 characters, e.g. `openssl rand -hex 32`, or leave it unset to use a "
      "random secret per start";
  if (c.jwt_secret_key == kReferenceDefaultJwtSecret) {
    out.push_back({"jwt-secret-default",
                   "the JWT secret is the reference server's published default: anyone can mint "
                   "valid tokens",
                   secret_fix});
  } else if (!c.jwt_secret_key.empty() && c.jwt_secret_key.size() < kMinJwtSecretChars) {
    out.push_back({"jwt-secret-short",
                   "the JWT secret is " + std::to_string(c.jwt_secret_key.size()) +
                       " characters long; at least " + std::to_string(kMinJwtSecretChars) +
                       " are required",
                   secret_fix});
  }

  if (!c.bootstrap_admin_username.empty() && c.bootstrap_admin_password.empty()) {
    out.push_back({"bootstrap-admin-password",
                   "a bootstrap admin username is set but no bootstrap admin password",
                   "set --bootstrap-admin-password (or MAGNETAR_BOOTSTRAP_ADMIN_PASSWORD / "
                   "PULSAR_BOOTSTRAP_ADMIN_PASSWORD; the environment keeps it out of `ps`), or "
                   "unset the username to have `admin` created with a random password in "
                   "<data-dir>/initial-admin-password"});
  } else if (c.bootstrap_admin_username.empty() && !c.bootstrap_admin_password.empty()) {
    out.push_back({"bootstrap-admin-username",
                   "a bootstrap admin password is set but no bootstrap admin username",
                   "set --bootstrap-admin-username (or MAGNETAR_BOOTSTRAP_ADMIN_USERNAME / "
                   "PULSAR_BOOTSTRAP_ADMIN_USERNAME), or unset the password"});
  }

  const bool loopback = IsLoopbackHost(c.host);
  if (c.trusted_hosts_set && c.trusted_hosts.empty()) {
    out.push_back({"trusted-hosts-empty",
                   "the trusted hosts are set to an empty list (the reference server would "
                   "refuse every request)",
                   "list the Host names clients use, e.g. --trusted-hosts relay.example.com, or "
                   "remove the setting to accept the loopback names only"});
  } else if (!loopback && Contains(c.trusted_hosts, "*")) {
    out.push_back({"trusted-hosts-any",
                   "the trusted hosts include '*' while listening on " + c.host +
                       ", which is not a loopback address: any Host header is accepted",
                   "list the Host names clients use, e.g. --trusted-hosts relay.example.com "
                   "(*.example.com matches sub-domains)"});
  }
  if (!loopback && Contains(c.allowed_origins, "*")) {
    out.push_back({"allowed-origins-any",
                   "the allowed origins include '*' while listening on " + c.host +
                       ", which is not a loopback address: any web page could call the API and "
                       "open WebSockets from its visitors' browsers",
                   "list the exact origins of the web applications that use the relay, e.g. "
                   "--allowed-origins https://app.example.com"});
  }
  return out;
}

Status EnforceStartupGuards(const ServeConfig& config) {
  const std::vector<GuardFinding> findings = CheckStartupGuards(config);
  auto log = Logger("server");
  if (findings.empty()) {
    if (config.allow_insecure_defaults) {
      log->warn("--allow-insecure-defaults is set, but no startup guard needed it");
    }
    return Status::Ok();
  }
  if (config.allow_insecure_defaults) {
    for (const auto& f : findings) {
      log->warn("INSECURE: startup guard '{}' bypassed by --allow-insecure-defaults: {}. Fix: {}",
                f.id, f.problem, f.fix);
    }
    return Status::Ok();
  }
  std::string message = "refusing to start with insecure settings:";
  for (const auto& f : findings) {
    message += "\n  [" + f.id + "] " + f.problem + ".\n    Fix: " + f.fix + ".";
  }
  message +=
      "\n  (--allow-insecure-defaults, or MAGNETAR_ALLOW_INSECURE_DEFAULTS=true, starts anyway: "
      "for local development only)";
  return InvalidArgument(message);
}

}  // namespace magnetar::server
