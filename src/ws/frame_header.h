#pragma once

// The header of one server → client WebSocket frame (RFC 6455 §5.2): FIN set (never fragmented),
// the opcode, the payload length in 7, 16 or 64 bits, and no mask (servers never mask). The
// frame on the wire is these bytes followed by the payload itself, so the payload of a message
// fanned out to many subscribers is written from one shared string: only these 2-10 bytes are
// per connection.

#include <array>
#include <cstddef>
#include <cstdint>

namespace magnetar::ws {

enum class Opcode : uint8_t { kText = 0x1, kBinary = 0x2 };

struct FrameHeader {
  static constexpr size_t kMaxSize = 10;
  std::array<uint8_t, kMaxSize> bytes{};
  uint8_t size = 0;

  const uint8_t* data() const { return bytes.data(); }
};

inline FrameHeader EncodeFrameHeader(Opcode opcode, uint64_t payload_size) {
  FrameHeader h;
  h.bytes[0] = static_cast<uint8_t>(0x80 | static_cast<uint8_t>(opcode));  // FIN + opcode
  if (payload_size <= 125) {
    h.bytes[1] = static_cast<uint8_t>(payload_size);
    h.size = 2;
  } else if (payload_size <= 0xFFFF) {
    h.bytes[1] = 126;
    h.bytes[2] = static_cast<uint8_t>(payload_size >> 8);
    h.bytes[3] = static_cast<uint8_t>(payload_size);
    h.size = 4;
  } else {
    h.bytes[1] = 127;
    for (int i = 0; i < 8; ++i) {
      h.bytes[2 + i] = static_cast<uint8_t>(payload_size >> (8 * (7 - i)));
    }
    h.size = 10;
  }
  return h;
}

}  // namespace magnetar::ws
