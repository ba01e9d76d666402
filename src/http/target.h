#pragma once

// Parsing of a request target ("/api/v1/topics/a%20b?limit=5") into what the router and the
// handlers use: the decoded path and segments, the query pairs, and the trailing-slash flag.

#include <string>
#include <string_view>
#include <vector>

#include "http/types.h"

namespace magnetar::http {

struct ParsedTarget {
  std::vector<std::string> segments;  // decoded, empty segments dropped
  bool trailing_slash = false;        // the raw path ends in '/' (and is not just "/")
  std::string raw_path;               // still percent-encoded
};

// Fills ctx.path and ctx.query. False when the target is not an origin-form URL.
bool ParseTarget(std::string_view target, RequestContext& ctx, ParsedTarget& out);

namespace detail {
// The general parser (Boost.URL) alone, without the fast path for plain paths; for tests, which
// check that both agree.
bool ParseTargetGeneral(std::string_view target, RequestContext& ctx, ParsedTarget& out);
}  // namespace detail

}  // namespace magnetar::http
