#include "relay/ws_frames.h"

#include "relay/validation.h"

namespace magnetar::relay {

namespace {

// Every name valid, or nullopt.
std::optional<std::vector<std::string>> TopicNames(const json::array& topics) {
  std::vector<std::string> names;
  names.reserve(topics.size());
  ValidationErrors errors;
  for (const auto& t : topics) {
    auto name = TopicNameValue(t, json::array{"topics"}, errors);
    if (!name) return std::nullopt;
    names.push_back(std::move(*name));
  }
  return names;
}

ClientFrame Invalid(std::string_view code, std::string_view message, bool close) {
  ClientFrame out;
  out.kind = ClientFrame::Kind::kInvalid;
  out.error_code = code;
  out.error_message = message;
  out.close = close;
  return out;
}

constexpr std::string_view kSubscriptionError = "SUBSCRIPTION_ERROR";
constexpr std::string_view kFailedToSubscribe = "Failed to subscribe";
constexpr std::string_view kProcessingError = "PROCESSING_ERROR";
constexpr std::string_view kProcessingErrorMessage = "processing error";

}  // namespace

std::optional<SubscribeFields> ParseSubscribeFields(const json::object& frame) {
  const json::value* topics = frame.if_contains("topics");
  const json::value* client_id = frame.if_contains("client_id");
  if (!topics || !topics->is_array() || topics->get_array().empty() ||
      topics->get_array().size() > kMaxSubscribeTopics) {
    return std::nullopt;
  }
  if (!client_id || !client_id->is_string() || client_id->get_string().empty() ||
      client_id->get_string().size() > kMaxClientIdLength) {
    return std::nullopt;
  }
  SubscribeFields out;
  auto names = TopicNames(topics->get_array());
  if (!names) return std::nullopt;
  out.topics = std::move(*names);
  out.client_id = std::string(client_id->get_string());
  if (const json::value* offset = frame.if_contains("offset"); offset && !offset->is_null()) {
    if (!offset->is_string()) return std::nullopt;
    const std::string_view o = offset->get_string();
    if (o == "first") {
      out.replay_from = MessageId::Min();
    } else if (o != "last") {
      out.replay_from = MessageId::Parse(o);
      if (!out.replay_from) return std::nullopt;
    }
  }
  return out;
}

std::optional<std::vector<std::string>> ParseUnsubscribeTopics(const json::object& frame) {
  const json::value* topics = frame.if_contains("topics");
  if (!topics || !topics->is_array() || topics->get_array().empty()) return std::nullopt;
  return TopicNames(topics->get_array());
}

std::optional<std::string> ParseAckMessageId(const json::object& frame) {
  const json::value* id = frame.if_contains("message_id");
  if (!id || !id->is_string()) return std::nullopt;
  return std::string(id->get_string());
}

ClientFrame ParseClientFrame(std::string_view text, bool subscribed) {
  auto parsed = ParseJson(text);
  if (!parsed || !parsed->is_object()) {
    // Not JSON, or not an object.
    return subscribed ? Invalid(kProcessingError, kProcessingErrorMessage, false)
                      : Invalid(kSubscriptionError, kFailedToSubscribe, true);
  }
  ClientFrame out;
  out.json = std::move(parsed);
  const json::object& frame = out.json->get_object();
  const json::value* type = frame.if_contains("type");

  if (!subscribed) {
    // The first frame must be a subscribe; `type` may be left out. Any failure closes.
    if (type && !(type->is_string() && type->get_string() == "subscribe")) {
      return Invalid(kSubscriptionError, kFailedToSubscribe, true);
    }
    auto fields = ParseSubscribeFields(frame);
    if (!fields) return Invalid(kSubscriptionError, kFailedToSubscribe, true);
    out.kind = ClientFrame::Kind::kSubscribe;
    out.subscribe = std::move(*fields);
    return out;
  }

  std::string type_name = "None";
  if (type && type->is_string()) {
    type_name = std::string(type->get_string());
  } else if (type) {
    type_name = json::serialize(*type);
  }
  if (type_name == "ping") {
    out.kind = ClientFrame::Kind::kPing;
  } else if (type_name == "ack") {
    auto id = ParseAckMessageId(frame);
    if (!id) return Invalid(kProcessingError, kProcessingErrorMessage, false);
    out.kind = ClientFrame::Kind::kAck;
    out.message_id = std::move(*id);
  } else if (type_name == "unsubscribe") {
    auto topics = ParseUnsubscribeTopics(frame);
    if (!topics) return Invalid(kProcessingError, kProcessingErrorMessage, false);
    out.kind = ClientFrame::Kind::kUnsubscribe;
    out.topics = std::move(*topics);
  } else if (type_name == "subscribe") {
    // A later subscribe adds topics (D15); a bad one is refused without closing.
    auto fields = ParseSubscribeFields(frame);
    if (!fields) return Invalid(kSubscriptionError, kFailedToSubscribe, false);
    out.kind = ClientFrame::Kind::kSubscribe;
    out.subscribe = std::move(*fields);
  } else {
    out.kind = ClientFrame::Kind::kUnknown;
    out.type_name = std::move(type_name);
  }
  return out;
}

}  // namespace magnetar::relay
