#include "core/topic_name.h"

#include <array>
#include <cstdint>

namespace magnetar::core {

namespace {

// What each byte may be in a topic name: one table lookup per byte (every published message's
// topic is checked).
enum : uint8_t { kNotAllowed = 0, kAlnum = 1, kPunctuation = 2 };
constexpr std::array<uint8_t, 256> kTopicBytes = [] {
  std::array<uint8_t, 256> table{};
  for (int c = 'a'; c <= 'z'; ++c) table[c] = kAlnum;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = kAlnum;
  for (int c = '0'; c <= '9'; ++c) table[c] = kAlnum;
  table['_'] = table['-'] = table['.'] = kPunctuation;
  return table;
}();

}  // namespace

std::optional<std::string> ValidateTopicName(std::string_view name) {
  if (name.empty()) return "Topic name must not be empty";
  if (name.size() > kMaxTopicNameBytes) return "Topic name must be at most 255 characters";
  uint8_t seen = 0;  // the kinds of byte seen
  for (unsigned char c : name) {
    const uint8_t kind = kTopicBytes[c];
    if (kind == kNotAllowed) {
      return "Topic must contain only alphanumeric characters, hyphens, and underscores";
    }
    seen |= kind;
  }
  if (!(seen & kAlnum)) {
    return "Topic must contain only alphanumeric characters, hyphens, and underscores";
  }
  return std::nullopt;
}

}  // namespace magnetar::core
