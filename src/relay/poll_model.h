#pragma once

// The long-poll request model `PollRequest` (spec §3.1 with correction D5: a malformed cursor is
// a 422, not a 500). Pure validation, no I/O: shared by poll_routes.cc and the fuzzers.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/message_id.h"
#include "relay/json_util.h"

namespace magnetar::relay {

inline constexpr size_t kMaxPollTopics = 20;

struct PollRequest {
  std::vector<std::string> topics;
  std::map<std::string, MessageId> since;  // topic -> last id the client has seen
  int64_t timeout = 30;                    // seconds, 1-60
};

// Validates a poll body (errors at ["body", …]); nullopt when anything is invalid.
std::optional<PollRequest> ParsePollRequest(const json::value& body, ValidationErrors& errors);

}  // namespace magnetar::relay
