#include "core/topic_name.h"

namespace magnetar::core {

std::optional<std::string> ValidateTopicName(std::string_view name) {
  if (name.empty()) return "Topic name must not be empty";
  if (name.size() > kMaxTopicNameBytes) return "Topic name must be at most 255 characters";
  bool has_alnum = false;
  for (unsigned char c : name) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    has_alnum |= alnum;
    if (!alnum && c != '_' && c != '-' && c != '.') {
      return "Topic must contain only alphanumeric characters, hyphens, and underscores";
    }
  }
  if (!has_alnum) return "Topic must contain only alphanumeric characters, hyphens, and underscores";
  return std::nullopt;
}

}  // namespace magnetar::core
