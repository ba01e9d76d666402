#pragma once

// Small JSON helpers for the client (internal).

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace magnetar::client::detail {

std::optional<boost::json::value> parse_json(std::string_view text);
std::optional<boost::json::object> parse_json_object(std::string_view text);

// obj[key] as a string / integer, when present with that type.
std::optional<std::string> get_string(const boost::json::object& obj, std::string_view key);
std::optional<std::int64_t> get_int(const boost::json::object& obj, std::string_view key);

// The first `max` bytes of a response body for an error message (control characters dropped).
std::string snippet(std::string_view body, std::size_t max = 300);

}  // namespace magnetar::client::detail
