#include "common/message_id.h"

#include <charconv>

namespace magnetar {
namespace {

std::optional<uint64_t> ParseU64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

void MessageId::AppendTo(std::string& out) const {
  char buf[48];
  auto r = std::to_chars(buf, buf + 24, hi);
  *r.ptr++ = '-';
  r = std::to_chars(r.ptr, buf + sizeof(buf), lo);
  out.append(buf, r.ptr);
}

std::string MessageId::ToString() const {
  std::string out;
  AppendTo(out);
  return out;
}

std::optional<MessageId> MessageId::Parse(std::string_view text) {
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto hi = ParseU64(text.substr(0, dash));
  auto lo = ParseU64(text.substr(dash + 1));
  if (!hi || !lo) return std::nullopt;
  return MessageId{*hi, *lo};
}

}  // namespace magnetar
