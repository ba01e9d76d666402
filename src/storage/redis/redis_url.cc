#include "storage/redis/redis_url.h"

#include <charconv>

namespace magnetar::storage {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding for the user and password (a password may hold '@' or ':' written %40, %3A).
bool PercentDecode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

template <typename T>
bool ParseNumber(std::string_view text, T& value) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

bool IsRedisUrl(std::string_view storage) {
  return storage.starts_with("redis://") || storage.starts_with("rediss://");
}

std::string RedisEndpoint::Describe() const {
  std::string out = tls ? "rediss://" : "redis://";
  if (!user.empty() || !password.empty()) out += (user.empty() ? "" : user) + ":***@";
  const bool v6 = host.find(':') != std::string::npos;
  out += v6 ? "[" + host + "]" : host;
  out += ":" + std::to_string(port) + "/" + std::to_string(db);
  return out;
}

Result<RedisEndpoint> ParseRedisUrl(std::string_view url) {
  RedisEndpoint e;
  std::string_view rest;
  if (url.starts_with("redis://")) {
    rest = url.substr(8);
  } else if (url.starts_with("rediss://")) {
    rest = url.substr(9);
    e.tls = true;
  } else {
    return InvalidArgument("a Redis storage URL starts with redis:// or rediss://");
  }
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view credentials = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = credentials.find(':');
    std::string_view user = credentials, password;
    if (colon != std::string_view::npos) {
      user = credentials.substr(0, colon);
      password = credentials.substr(colon + 1);
    } else {
      // "redis://secret@host": like redis-cli, a lone credential is the password.
      password = credentials;
      user = {};
    }
    if (!PercentDecode(user, e.user) || !PercentDecode(password, e.password)) {
      return InvalidArgument("Redis URL: bad percent-encoding in the credentials");
    }
  }
  std::string_view hostport = rest;
  std::string_view db;
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    db = rest.substr(slash + 1);
  }
  std::string_view port;
  if (hostport.starts_with('[')) {
    const size_t close = hostport.find(']');
    if (close == std::string_view::npos) return InvalidArgument("Redis URL: unclosed '[' in host");
    e.host = std::string(hostport.substr(1, close - 1));
    const std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return InvalidArgument("Redis URL: expected ':' after ']'");
      port = after.substr(1);
    }
  } else if (const size_t colon = hostport.rfind(':'); colon != std::string_view::npos) {
    e.host = std::string(hostport.substr(0, colon));
    port = hostport.substr(colon + 1);
  } else {
    e.host = std::string(hostport);
  }
  if (e.host.empty()) return InvalidArgument("Redis URL: no host");
  if (!port.empty()) {
    unsigned p = 0;
    if (!ParseNumber(port, p) || p == 0 || p > 65535) {
      return InvalidArgument("Redis URL: port must be 1-65535");
    }
    e.port = static_cast<uint16_t>(p);
  }
  if (!db.empty()) {
    if (!ParseNumber(db, e.db) || e.db < 0) {
      return InvalidArgument("Redis URL: the database after '/' must be a number >= 0");
    }
  }
  return e;
}

}  // namespace magnetar::storage
