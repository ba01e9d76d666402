#pragma once

// Relay base-URL validation and path-segment encoding (spec clients.md §A.1).

#include <cstdint>
#include <string>
#include <string_view>

namespace magnetar::client {

// Set to exactly "1" to allow plain http:// to a host other than localhost (read at call time).
inline constexpr const char* kInsecureBypassEnvVar = "PULSAR_RELAY_ALLOW_INSECURE";

// Checks a relay base URL and returns "scheme://netloc" without a trailing slash. Throws UrlError
// naming the first failed rule: scheme http/https; a host; no userinfo; no path but "/"; no query
// or fragment; plain http only to localhost, 127.0.0.1 or ::1 (or with the bypass variable), and
// not even there when `allow_insecure_localhost` is false. Also (a C++ tightening) a numeric port
// in 1-65535 and no whitespace or control characters.
std::string normalize_relay_url(std::string_view url, bool allow_insecure_localhost = true);

// Percent-encodes a topic name for one path segment: only A-Z a-z 0-9 _ . - ~ stay as they are,
// every other byte (UTF-8 included) becomes %XX with upper-case hex.
std::string quote_topic(std::string_view name);

// Where a normalized relay URL points.
struct RelayEndpoint {
  bool tls = false;
  std::string host;         // without brackets for IPv6; what DNS and SNI get
  std::uint16_t port = 80;  // the explicit port or the scheme's default
  std::string host_header;  // the URL's netloc as written ("relay.example:9000", "[::1]:8080")
};

// Parses a URL that normalize_relay_url accepted (it validates again).
RelayEndpoint parse_relay_endpoint(std::string_view url);

}  // namespace magnetar::client
