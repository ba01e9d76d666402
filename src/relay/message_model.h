#pragma once

// The relay `Message` request model (spec §2.1 with correction D2: ttl is honoured).

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/message.h"
#include "relay/json_util.h"

namespace magnetar::relay {

struct MessageRequest {
  std::string topic;
  std::string payload_json;  // compact JSON text of the payload object
  std::optional<int64_t> ttl_seconds;
  std::vector<std::pair<std::string, std::string>> metadata;

  core::DraftPtr ToDraft(UnixMicros now) const;
};

// Validates one message object at `loc` (["body"] or ["body","messages",i]).
std::optional<MessageRequest> ParseMessageRequest(const json::value& v, const json::array& loc,
                                                  ValidationErrors& errors);

}  // namespace magnetar::relay
