#pragma once

// A message id: a pair of unsigned 64-bit numbers (hi, lo), ordered, written "<hi>-<lo>".
// It is the same thing as a Redis stream id and maps one-to-one onto Pulsar's
// MessageIdData(ledgerId, entryId). A cursor is an id meaning "everything strictly after it".

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace magnetar {

struct MessageId {
  uint64_t hi = 0;
  uint64_t lo = 0;

  auto operator<=>(const MessageId&) const = default;

  // The id before every real id: a cursor at Min() reads from the start.
  static constexpr MessageId Min() { return {0, 0}; }
  static constexpr MessageId Max() { return {UINT64_MAX, UINT64_MAX}; }

  std::string ToString() const;
  void AppendTo(std::string& out) const;

  // Strict: decimal digits, one '-', decimal digits, no sign, no spaces, no overflow.
  static std::optional<MessageId> Parse(std::string_view text);
};

}  // namespace magnetar
