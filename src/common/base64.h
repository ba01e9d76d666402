#pragma once

// Standard base64 (RFC 4648: the `+/` alphabet, padded), as the Pulsar WebSocket API carries
// payloads, eFTL carries opaque fields and HTTP Basic carries credentials. (The URL-safe variant
// of JWTs is in common/random.h.) Decoding rules differ between those protocols, so each keeps its
// own decoder.

#include <string>
#include <string_view>

namespace magnetar {

std::string Base64Encode(std::string_view bytes);

}  // namespace magnetar
