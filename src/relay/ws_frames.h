#pragma once

// The relay WebSocket client frames (spec §4.2 with correction D15) as a pure decision, without a
// socket: what RelayWsSession::OnText does with one text frame is decided here, then carried out
// by the session. Shared with the fuzzers.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/message_id.h"
#include "relay/json_util.h"

namespace magnetar::relay {

inline constexpr size_t kMaxSubscribeTopics = 50;
inline constexpr size_t kMaxClientIdLength = 255;

// A valid `subscribe` frame's fields.
struct SubscribeFields {
  std::vector<std::string> topics;
  std::string client_id;
  // D15: nullopt = "last" (live only); MessageId::Min() = "first"; otherwise replay after it.
  std::optional<MessageId> replay_from;
};

// nullopt when `frame` is not a valid subscribe (topics 1-50 valid names, client_id 1-255 chars,
// offset "last"/"first"/a message id or null).
std::optional<SubscribeFields> ParseSubscribeFields(const json::object& frame);
// nullopt unless `topics` is a non-empty list of valid topic names.
std::optional<std::vector<std::string>> ParseUnsubscribeTopics(const json::object& frame);
// nullopt unless `message_id` is a string.
std::optional<std::string> ParseAckMessageId(const json::object& frame);

struct ClientFrame {
  enum class Kind {
    kSubscribe,    // subscribe (first or later): `subscribe` is set
    kUnsubscribe,  // `topics` is set
    kPing,         // answer with a pong
    kAck,          // `message_id` is set; nothing is sent back
    kUnknown,      // UNKNOWN_MESSAGE_TYPE "Unknown message type: <type_name>"
    kInvalid,      // send the error `error_code`/`error_message`; close (1000) if `close`
  };
  Kind kind = Kind::kInvalid;
  SubscribeFields subscribe;
  std::vector<std::string> topics;
  std::string message_id;
  std::string type_name;
  std::string_view error_code;
  std::string_view error_message;
  bool close = false;
  // The parsed frame (an object) unless the text was not a JSON object.
  std::optional<json::value> json;
};

// Decides what one client text frame means. `subscribed`: whether a subscribe already succeeded
// on this connection (before that, only a subscribe is accepted and any failure closes).
ClientFrame ParseClientFrame(std::string_view text, bool subscribed);

}  // namespace magnetar::relay
