#include "client/url.h"

#include <cctype>
#include <cstdlib>
#include <string>

#include "client/errors.h"

namespace magnetar::client {
namespace {

// urllib.parse.urlsplit, reduced to what the relay rules need.
struct SplitUrl {
  std::string scheme;  // lower-cased
  std::string netloc;
  std::string path;
  std::string query;
  std::string fragment;
};

bool IsSchemeChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

SplitUrl Split(std::string_view url) {
  SplitUrl out;
  std::string_view rest = url;
  if (size_t colon = rest.find(':'); colon != std::string_view::npos && colon > 0 &&
                                     std::isalpha(static_cast<unsigned char>(rest[0]))) {
    bool valid = true;
    for (size_t i = 0; i < colon; ++i) valid = valid && IsSchemeChar(rest[i]);
    if (valid) {
      out.scheme = Lower(rest.substr(0, colon));
      rest.remove_prefix(colon + 1);
    }
  }
  if (rest.substr(0, 2) == "//") {
    rest.remove_prefix(2);
    size_t end = rest.find_first_of("/?#");
    if (end == std::string_view::npos) end = rest.size();
    out.netloc = std::string(rest.substr(0, end));
    rest.remove_prefix(end);
  }
  if (size_t hash = rest.find('#'); hash != std::string_view::npos) {
    out.fragment = std::string(rest.substr(hash + 1));
    rest = rest.substr(0, hash);
  }
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    out.query = std::string(rest.substr(q + 1));
    rest = rest.substr(0, q);
  }
  out.path = std::string(rest);
  return out;
}

struct HostPort {
  std::string host;  // lower-cased, IPv6 without brackets
  std::string port;  // "" when absent
};

HostPort SplitHostPort(std::string_view hostinfo) {
  HostPort out;
  if (!hostinfo.empty() && hostinfo.front() == '[') {
    size_t close = hostinfo.find(']');
    if (close == std::string_view::npos) throw UrlError("relay_url has an invalid IPv6 address");
    out.host = Lower(hostinfo.substr(1, close - 1));
    std::string_view after = hostinfo.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw UrlError("relay_url has an invalid IPv6 address");
      out.port = std::string(after.substr(1));
    }
    return out;
  }
  if (size_t colon = hostinfo.rfind(':'); colon != std::string_view::npos) {
    out.host = Lower(hostinfo.substr(0, colon));
    out.port = std::string(hostinfo.substr(colon + 1));
  } else {
    out.host = Lower(hostinfo);
  }
  return out;
}

bool IsLocalhost(const std::string& host) {
  return host == "localhost" || host == "127.0.0.1" || host == "::1";
}

std::string Repr(std::string_view s) { return "'" + std::string(s) + "'"; }

struct Checked {
  SplitUrl parts;
  HostPort hp;
};

Checked Check(std::string_view url, bool allow_insecure_localhost) {
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      throw UrlError("relay_url must not contain whitespace or control characters");
    }
  }
  Checked c{Split(url), {}};
  const SplitUrl& p = c.parts;
  if (p.scheme != "http" && p.scheme != "https") {
    throw UrlError("relay_url must use http:// or https:// (got " + Repr(p.scheme) + ")");
  }
  // Userinfo is whatever precedes the last '@' of the netloc (urllib's rule).
  const size_t at = p.netloc.rfind('@');
  const std::string_view hostinfo = at == std::string::npos
                                        ? std::string_view(p.netloc)
                                        : std::string_view(p.netloc).substr(at + 1);
  c.hp = SplitHostPort(hostinfo);
  if (c.hp.host.empty()) throw UrlError("relay_url is missing a host");
  if (at != std::string::npos) {
    throw UrlError("relay_url must not embed username:password (use auth_manager instead)");
  }
  if (!p.path.empty() && p.path != "/") {
    throw UrlError("relay_url must not include a path component (got " + Repr(p.path) +
                   "); the client appends API paths itself.");
  }
  if (!p.query.empty() || !p.fragment.empty()) {
    throw UrlError("relay_url must not include a query string or fragment");
  }
  if (!c.hp.port.empty()) {
    bool digits = c.hp.port.size() <= 5;
    for (char ch : c.hp.port) digits = digits && std::isdigit(static_cast<unsigned char>(ch));
    if (!digits || std::atoi(c.hp.port.c_str()) < 1 || std::atoi(c.hp.port.c_str()) > 65535) {
      throw UrlError("relay_url has an invalid port " + Repr(c.hp.port));
    }
  }
  if (p.scheme == "http") {
    if (!IsLocalhost(c.hp.host)) {
      const char* bypass = std::getenv(kInsecureBypassEnvVar);
      if (bypass == nullptr || std::string_view(bypass) != "1") {
        throw UrlError("refusing plaintext http:// to non-localhost host " + Repr(c.hp.host) +
                       "; use https:// (or set " + kInsecureBypassEnvVar + "=1)");
      }
    } else if (!allow_insecure_localhost) {
      throw UrlError("refusing plaintext http:// to " + Repr(c.hp.host) +
                     " because allow_insecure_localhost is false; use https://");
    }
  }
  return c;
}

}  // namespace

std::string normalize_relay_url(std::string_view url, bool allow_insecure_localhost) {
  Checked c = Check(url, allow_insecure_localhost);
  std::string out = c.parts.scheme + "://" + c.parts.netloc;
  while (!out.empty() && out.back() == '/') out.pop_back();
  return out;
}

std::string quote_topic(std::string_view name) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(name.size() * 3);
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

RelayEndpoint parse_relay_endpoint(std::string_view url) {
  Checked c = Check(url, true);
  RelayEndpoint e;
  e.tls = c.parts.scheme == "https";
  e.host = c.hp.host;
  e.port = c.hp.port.empty() ? (e.tls ? 443 : 80)
                             : static_cast<std::uint16_t>(std::atoi(c.hp.port.c_str()));
  e.host_header = c.parts.netloc;
  return e;
}

}  // namespace magnetar::client
