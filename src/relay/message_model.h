#pragma once

// The relay `Message` request model (spec §2.1 with correction D2: ttl is honoured).

#include <functional>
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

  // Moves the request's strings into a draft: a bulk of 100 copies none of them.
  core::DraftPtr ToDraft(UnixMicros now) &&;
};

// Where a message object sits in the body (["body"] or ["body","messages",i]). Built only when an
// error is reported: a valid bulk of 100 then builds none of the 300 location arrays.
using LocationFn = std::function<json::array()>;

// Validates one message object at `loc()`.
std::optional<MessageRequest> ParseMessageRequest(const json::value& v, const LocationFn& loc,
                                                  ValidationErrors& errors);

}  // namespace magnetar::relay
