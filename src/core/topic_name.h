#pragma once

// The topic-name rule (relay spec §0.4 with correction D1): ASCII [A-Za-z0-9_.-], 1-255 bytes, at
// least one alphanumeric character.

#include <optional>
#include <string>
#include <string_view>

namespace magnetar::core {

inline constexpr size_t kMaxTopicNameBytes = 255;

// nullopt when valid; otherwise the reference's error text for the first rule broken.
std::optional<std::string> ValidateTopicName(std::string_view name);

}  // namespace magnetar::core
