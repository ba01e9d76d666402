#pragma once

// Serialises a Response into one flat HTTP/1.1 byte string, written with a single socket write.
// Beast's message serializer walks a chain of buffer views per header and body piece; for the
// small responses of this server (a few headers and a short JSON body) that machinery cost more
// instructions than everything else in writing a response (publish-path profile, BENCHMARKS.md).
// The output is what Beast wrote for the same message: status line with the standard reason
// phrase, Content-Type, the handler's headers in order, CORS headers, `Connection: close` when the
// connection ends, Content-Length. One difference: 1xx, 204 and 304 responses carry no body and no
// Content-Length (RFC 9110 §8.6 forbids it for 1xx and 204; Beast wrote `Content-Length: 0`).

#include <string>
#include <string_view>

#include "http/types.h"

namespace magnetar::http {

struct ResponseFraming {
  bool keep_alive = true;
  // Echoed as Access-Control-Allow-Origin (with `Vary: Origin`) when non-empty.
  std::string_view allowed_origin;
};

std::string SerializeResponse(const Response& response, const ResponseFraming& framing);

}  // namespace magnetar::http
