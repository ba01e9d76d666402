#pragma once

// JSON written the way Python's json.dumps writes it, so files this library writes look like the
// ones the Python package writes: ", " and ": " separators (or an indent), optional sorted keys,
// non-ASCII escaped as \uXXXX (lower-case hex, surrogate pairs).

#include <boost/json/value.hpp>
#include <optional>
#include <string>

namespace magnetar::client::detail {

std::string python_json_dumps(const boost::json::value& value, std::optional<int> indent = {},
                              bool sort_keys = false);

}  // namespace magnetar::client::detail
