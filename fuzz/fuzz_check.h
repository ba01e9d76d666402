#pragma once

// Helpers shared by the fuzz targets: invariant checks that abort (libFuzzer then saves the
// input), and a JSON well-formedness check for what the server would send.

#include <boost/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond)                                                               \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

namespace magnetar::fuzz {

// Whether `text` is one JSON value (nesting allowed deeper than the server's request bound:
// responses wrap request values in a few levels of their own).
inline bool IsJson(std::string_view text, boost::json::value* out = nullptr) {
  boost::json::parse_options options;
  options.max_depth = 1024;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec, {}, options);
  if (ec) return false;
  if (out) *out = std::move(v);
  return true;
}

}  // namespace magnetar::fuzz
