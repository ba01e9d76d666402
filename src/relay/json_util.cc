#include "relay/json_util.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

namespace magnetar::relay {

namespace {

void AppendDouble(std::string& out, double d) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  std::string_view text(buf, ec == std::errc() ? static_cast<size_t>(end - buf) : 0);
  out += text;
  // Python writes 1.0 for a float that is whole; keep it a float on the way back.
  if (text.find_first_of(".en") == std::string_view::npos) out += ".0";
}

template <typename Int>
void AppendInteger(std::string& out, Int i) {
  char buf[24];
  const std::to_chars_result written = std::to_chars(buf, buf + sizeof buf, i);  // always fits
  out.append(buf, written.ptr);
}

}  // namespace

void AppendJson(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: out += "null"; return;
    case json::kind::bool_: out += v.get_bool() ? "true" : "false"; return;
    case json::kind::int64: AppendInteger(out, v.get_int64()); return;
    case json::kind::uint64: AppendInteger(out, v.get_uint64()); return;
    case json::kind::double_: AppendDouble(out, v.get_double()); return;
    case json::kind::string: AppendJsonString(out, v.get_string()); return;
    case json::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& item : v.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        AppendJson(out, item);
      }
      out.push_back(']');
      return;
    }
    case json::kind::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out.push_back(',');
        first = false;
        AppendJsonString(out, kv.key());
        out.push_back(':');
        AppendJson(out, kv.value());
      }
      out.push_back('}');
      return;
    }
  }
}

std::string SerializeJson(const json::value& v) {
  // Built in a per-thread scratch buffer (it keeps its capacity), then copied out at its exact
  // size: one allocation per call instead of one per doubling as the text grows.
  thread_local std::string scratch;
  scratch.clear();
  AppendJson(scratch, v);
  return scratch;
}

namespace {

// Boost.JSON turns a number too large for a double (1e400, or 400 digits) into infinity, which
// json::serialize then writes as `Infinity`: not JSON. Such bodies are refused at parse time.
// Depth is bounded by kMaxJsonDepth, so the recursion is too.
bool AllNumbersFinite(const json::value& v) {
  switch (v.kind()) {
    case json::kind::double_:
      return std::isfinite(v.get_double());
    case json::kind::array:
      for (const auto& e : v.get_array()) {
        if (!AllNumbersFinite(e)) return false;
      }
      return true;
    case json::kind::object:
      for (const auto& kv : v.get_object()) {
        if (!AllNumbersFinite(kv.value())) return false;
      }
      return true;
    default:
      return true;
  }
}

}  // namespace

std::optional<json::value> ParseJson(std::string_view text, std::string* error,
                                     json::storage_ptr storage) {
  json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, std::move(storage), options);
  if (ec) {
    if (error) *error = ec.message();
    return std::nullopt;
  }
  if (!AllNumbersFinite(v)) {
    if (error) *error = "number out of range";
    return std::nullopt;
  }
  return v;
}

bool IsSecretField(std::string_view name) {
  // By substring, case-insensitively, so near misses ("refresh_tokens", "Password", "api_secret")
  // are covered too: a client that misspells a field still must not get its credential echoed.
  static constexpr std::string_view kSecretParts[] = {"password", "passwd", "secret", "token",
                                                      "device_code", "csrf", "code_verifier"};
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view part : kSecretParts) {
    if (lower.find(part) != std::string::npos) return true;
  }
  return false;
}

namespace {

// Replaces the value of every secret field in `v` (depth is bounded by kMaxJsonDepth).
void RedactSecretFields(json::value& v) {
  if (v.is_object()) {
    for (auto& kv : v.get_object()) {
      if (IsSecretField(kv.key())) {
        kv.value() = kRedacted;
      } else {
        RedactSecretFields(kv.value());
      }
    }
  } else if (v.is_array()) {
    for (auto& item : v.get_array()) RedactSecretFields(item);
  }
}

}  // namespace

void ValidationErrors::Add(std::string_view type, json::array loc, std::string_view msg,
                           json::value input, std::optional<json::object> ctx) {
  // Never echo a credential: a short password or a mistyped refresh token would otherwise come
  // back in the 422 body. A "missing" error echoes the whole body, whose other secrets still go.
  const bool at_secret =
      !loc.empty() && loc.back().is_string() && IsSecretField(loc.back().get_string());
  if (at_secret && type != "missing" && !input.is_null()) {
    input = kRedacted;
  } else {
    RedactSecretFields(input);
  }
  json::object e;
  e["type"] = type;
  e["loc"] = std::move(loc);
  e["msg"] = msg;
  e["input"] = std::move(input);
  if (ctx) e["ctx"] = std::move(*ctx);
  errors_.push_back(std::move(e));
}

void ValidationErrors::Missing(json::array loc, const json::value& input) {
  Add("missing", std::move(loc), "Field required", input);
}

http::Response ValidationErrors::ToResponse() const {
  json::object body;
  body["detail"] = errors_;
  return http::Response::Json(422, SerializeJson(body));
}

http::Response JsonInvalidResponse(std::string_view error) {
  ValidationErrors errors;
  json::object ctx;
  ctx["error"] = error;
  errors.Add("json_invalid", json::array{"body", 0}, "JSON decode error", json::object(),
             std::move(ctx));
  return errors.ToResponse();
}

http::Response Detail(unsigned status, std::string_view message) {
  std::string body = R"({"detail":)";
  AppendJsonString(body, message);
  body.push_back('}');
  return http::Response::Json(status, std::move(body));
}

http::Response Unauthorized(std::string_view message) {
  return Detail(401, message).WithHeader("WWW-Authenticate", "Bearer");
}

namespace {

std::string FormDecode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ParseForm(std::string_view body) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t i = 0;
  while (i <= body.size()) {
    size_t amp = body.find('&', i);
    if (amp == std::string_view::npos) amp = body.size();
    std::string_view pair = body.substr(i, amp - i);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      if (eq == std::string_view::npos) {
        out.emplace_back(FormDecode(pair), "");
      } else {
        out.emplace_back(FormDecode(pair.substr(0, eq)), FormDecode(pair.substr(eq + 1)));
      }
    }
    i = amp + 1;
  }
  return out;
}

std::optional<int64_t> ValidateInt(const json::value& v, json::array loc,
                                   ValidationErrors& errors) {
  // Integers beyond int64 (pydantic keeps them as Python ints) saturate: every caller
  // range-checks the result, so a huge value still gets the right bound error (or clamp).
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) return v.get_uint64() <= static_cast<uint64_t>(kMax)
                                ? static_cast<int64_t>(v.get_uint64())
                                : kMax;
  if (v.is_double()) {
    // pydantic's float_as_int: a fraction is int_from_float; an integral float outside i64 is
    // int_parsing_size; otherwise the integer.
    const double d = v.get_double();
    if (!std::isfinite(d)) {
      errors.Add("finite_number", std::move(loc), "Input should be a finite number", v);
      return std::nullopt;
    }
    if (std::floor(d) != d) {
      errors.Add("int_from_float", std::move(loc),
                 "Input should be a valid integer, got a number with a fractional part", v);
      return std::nullopt;
    }
    // -2^63 and 2^63 are exact doubles; the cast is defined strictly between them.
    if (d > -9223372036854775808.0 && d < 9223372036854775808.0) return static_cast<int64_t>(d);
    errors.Add("int_parsing_size", std::move(loc),
               "Unable to parse input string as an integer, exceeded maximum size", v);
    return std::nullopt;
  }
  if (v.is_bool()) return v.get_bool() ? 1 : 0;
  if (v.is_string()) {
    // pydantic's lax mode parses numeric strings.
    const auto& s = v.get_string();
    bool neg = false;
    size_t i = 0;
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
      neg = s[0] == '-';
      i = 1;
    }
    bool ok = i < s.size();
    int64_t out = 0;
    bool saturated = false;
    for (; ok && i < s.size(); ++i) {
      if (s[i] < '0' || s[i] > '9') {
        ok = false;
      } else if (!saturated) {
        const int digit = s[i] - '0';
        // Accumulate as a negative number so INT64_MIN is reachable.
        if (out < (kMin + digit) / 10) {
          saturated = true;
        } else {
          out = out * 10 - digit;
        }
      }
    }
    if (ok) {
      if (saturated) return neg ? kMin : kMax;
      if (neg) return out;
      return out == kMin ? kMax : -out;
    }
    errors.Add("int_parsing", std::move(loc),
               "Input should be a valid integer, unable to parse string as an integer", v);
    return std::nullopt;
  }
  errors.Add("int_type", std::move(loc), "Input should be a valid integer", v);
  return std::nullopt;
}

}  // namespace magnetar::relay
