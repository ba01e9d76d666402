#pragma once

// JSON string literals for the hand-built frames of every front end (relay, Pulsar WebSocket,
// eFTL): one escaping rule, Python's json.dumps(ensure_ascii=False) spelling.

#include <string>
#include <string_view>

namespace magnetar {

// Appends `s` as a quoted JSON string: `"` and `\` escaped, \n \r \t \b \f by name, the other
// control characters as \u00XX; everything else (UTF-8 included, and '/') is copied raw. Bytes
// are not validated as UTF-8: callers pass text they already checked or produced.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace magnetar
