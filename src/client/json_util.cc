#include "client/json_util.h"

#include <boost/json/parse.hpp>
#include <cmath>

namespace magnetar::client::detail {

std::optional<boost::json::value> parse_json(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec) return std::nullopt;
  return v;
}

std::optional<boost::json::object> parse_json_object(std::string_view text) {
  auto v = parse_json(text);
  if (!v || !v->is_object()) return std::nullopt;
  return std::move(v->get_object());
}

std::optional<std::string> get_string(const boost::json::object& obj, std::string_view key) {
  if (const auto* v = obj.if_contains(key); v && v->is_string())
    return std::string(v->get_string());
  return std::nullopt;
}

std::optional<std::int64_t> get_int(const boost::json::object& obj, std::string_view key) {
  const auto* v = obj.if_contains(key);
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  if (v->is_double() && std::isfinite(v->get_double())) {
    return static_cast<std::int64_t>(v->get_double());
  }
  if (v->is_string()) {  // Python's int() accepts "600"
    try {
      size_t used = 0;
      const std::string s(v->get_string());
      long long n = std::stoll(s, &used);
      if (used == s.size()) return n;
    } catch (const std::exception&) {
    }
  }
  return std::nullopt;
}

std::string snippet(std::string_view body, std::size_t max) {
  std::string out;
  for (char c : body.substr(0, max)) {
    out.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
  }
  if (body.size() > max) out += "...";
  return out;
}

}  // namespace magnetar::client::detail
