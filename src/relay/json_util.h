#pragma once

// JSON helpers for the relay wire format: bounded parsing, FastAPI-shaped validation errors
// (`{"detail":[{"type","loc","msg","input"}]}`), `{"detail": "..."}` errors, form decoding.

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_string.h"  // AppendJsonString, used with these helpers everywhere
#include "common/status.h"
#include "http/types.h"

namespace magnetar::relay {

namespace json = boost::json;

// Nesting deeper than this is refused as malformed (bounded parser).
inline constexpr size_t kMaxJsonDepth = 64;

// Parses a request body; nullopt (and `error` set) when it is not JSON. The value's memory comes
// from `storage` (default: the heap).
std::optional<json::value> ParseJson(std::string_view text, std::string* error = nullptr,
                                     json::storage_ptr storage = {});

// What a secret takes the place of in an echoed 422 `input` (pydantic's SecretStr spelling).
inline constexpr char kRedacted[] = "**********";

// True for the body fields that carry credentials: a name containing "password", "passwd",
// "secret", "token", "device_code", "csrf" or "code_verifier" (any case). Their values are never
// echoed back in a validation error (nor, through it, into a proxy's or a client's error log).
bool IsSecretField(std::string_view name);

// Collects validation failures and renders them as FastAPI does (422). Unlike FastAPI, the
// echoed `input` never carries a secret: an error located at a secret field shows kRedacted,
// and secret fields inside an echoed object (a "missing" error echoes the whole body) are
// replaced by kRedacted.
class ValidationErrors {
 public:
  void Add(std::string_view type, json::array loc, std::string_view msg, json::value input,
           std::optional<json::object> ctx = std::nullopt);
  bool empty() const { return errors_.empty(); }
  http::Response ToResponse() const;

  // Common pydantic errors.
  void Missing(json::array loc, const json::value& input);
  void WrongType(std::string_view type, std::string_view msg, json::array loc,
                 const json::value& input) {
    Add(type, std::move(loc), msg, input);
  }

 private:
  json::array errors_;
};

// 422 for a body that is not JSON at all (checked before authentication, as FastAPI does).
http::Response JsonInvalidResponse(std::string_view error);

// {"detail": "<message>"} with the given status.
http::Response Detail(unsigned status, std::string_view message);
// 401 with WWW-Authenticate: Bearer.
http::Response Unauthorized(std::string_view message);

// Compact JSON as the reference (Python) writes it: numbers in their shortest form ("0.5", not
// Boost's "5E-1"), floats keep a fraction ("1.0"), non-ASCII text raw. Used for everything that
// echoes client JSON back: stored payloads and validation errors.
void AppendJson(std::string& out, const json::value& v);
std::string SerializeJson(const json::value& v);

// application/x-www-form-urlencoded body -> ordered pairs ('+' is a space).
std::vector<std::pair<std::string, std::string>> ParseForm(std::string_view body);

// A field of a JSON object, or nullptr.
inline const json::value* Field(const json::object& o, std::string_view key) {
  return o.if_contains(key);
}

// pydantic's lax int: integers, and floats with no fractional part. Writes an error otherwise.
std::optional<int64_t> ValidateInt(const json::value& v, json::array loc, ValidationErrors& errors);

}  // namespace magnetar::relay
