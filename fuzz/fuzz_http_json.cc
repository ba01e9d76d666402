// Fuzzes the relay's request-body handling: the input is an HTTP request body as the publish,
// bulk-publish and poll routes receive it. ParseJson, then every model validator the routes run
// on it, then what the server would send back (422 bodies, message frames). Nothing may crash,
// leak or hit undefined behaviour, and every response must be JSON.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/message.h"
#include "core/topic_name.h"
#include "fuzz_check.h"
#include "relay/frames.h"
#include "relay/idempotency.h"
#include "relay/json_util.h"
#include "relay/message_model.h"
#include "relay/poll_model.h"
#include "relay/validation.h"

namespace magnetar::relay {
namespace {

constexpr size_t kMaxBulkItems = 100;  // message_routes.cc
constexpr UnixMicros kNow = 1'700'000'000'123'456;

using magnetar::fuzz::IsJson;

void CheckErrors(const ValidationErrors& errors) {
  const http::Response r = errors.ToResponse();
  FUZZ_CHECK(r.status == 422);
  json::value body;
  FUZZ_CHECK(IsJson(r.body, &body));
  FUZZ_CHECK(body.is_object() && body.as_object().contains("detail"));
  for (const auto& e : body.at("detail").as_array()) {
    const auto& o = e.as_object();
    FUZZ_CHECK(o.contains("type") && o.contains("loc") && o.contains("msg") && o.contains("input"));
    FUZZ_CHECK(o.at("loc").is_array() && !o.at("loc").as_array().empty());
  }
}

// A request that validated: its draft, once stored, must encode to JSON frames.
void CheckRequest(const MessageRequest& request) {
  FUZZ_CHECK(!core::ValidateTopicName(request.topic));
  if (request.ttl_seconds) FUZZ_CHECK(*request.ttl_seconds > 0);
  json::value payload;
  FUZZ_CHECK(IsJson(request.payload_json, &payload) && payload.is_object());

  core::DraftPtr draft = MessageRequest(request).ToDraft(kNow);  // a copy: ToDraft moves out
  FUZZ_CHECK(draft->payload == request.payload_json);
  if (request.ttl_seconds) FUZZ_CHECK(draft->expires_at > kNow);
  draft->id = MessageId{static_cast<uint64_t>(kNow / 1000), 7};
  draft->publish_time = kNow;
  core::MessagePtr message = draft;
  json::value frame;
  FUZZ_CHECK(IsJson(*MessageFrame(message), &frame));
  FUZZ_CHECK(frame.at("topic").as_string() == request.topic);
  FUZZ_CHECK(frame.at("metadata").as_object().size() <= request.metadata.size());
  std::string stored;
  AppendStoredMessage(stored, *message);
  FUZZ_CHECK(IsJson(stored));
}

void Single(const json::value& body) {
  ValidationErrors errors;
  auto request = ParseMessageRequest(body, [] { return json::array{"body"}; }, errors);
  FUZZ_CHECK(request.has_value() == errors.empty());
  if (request) {
    CheckRequest(*request);
  } else {
    CheckErrors(errors);
  }
}

// The bulk route's shape (message_routes.cc): {"messages":[Message, …]}, 1-100 items.
void Bulk(const json::value& body) {
  ValidationErrors errors;
  const json::object* obj = BodyObject(body, errors);
  std::vector<MessageRequest> requests;
  if (obj) {
    const json::value* list = obj->if_contains("messages");
    if (!list) {
      errors.Missing(json::array{"body", "messages"}, body);
    } else if (!list->is_array()) {
      errors.Add("list_type", json::array{"body", "messages"}, "Input should be a valid list",
                 *list);
    } else if (list->as_array().empty() || list->as_array().size() > kMaxBulkItems) {
      errors.Add("too_long", json::array{"body", "messages"}, "List length", nullptr);
    } else {
      const auto& arr = list->as_array();
      for (size_t i = 0; i < arr.size(); ++i) {
        auto r = ParseMessageRequest(
            arr[i], [i] { return json::array{"body", "messages", i}; }, errors);
        if (r) requests.push_back(std::move(*r));
      }
    }
  }
  if (!errors.empty()) return CheckErrors(errors);
  for (const auto& r : requests) CheckRequest(r);
}

void Poll(const json::value& body) {
  ValidationErrors errors;
  auto request = ParsePollRequest(body, errors);
  FUZZ_CHECK(request.has_value() == errors.empty());
  if (!request) return CheckErrors(errors);
  FUZZ_CHECK(!request->topics.empty() && request->topics.size() <= kMaxPollTopics);
  for (const auto& t : request->topics) FUZZ_CHECK(!core::ValidateTopicName(t));
  FUZZ_CHECK(request->timeout >= 1 && request->timeout <= 60);
  for (const auto& [topic, id] : request->since) {
    FUZZ_CHECK(MessageId::Parse(id.ToString()) == id);
  }
}

}  // namespace
}  // namespace magnetar::relay

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace magnetar::relay;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  auto body = ParseJson(text, &error);
  if (!body) {
    // Answered before authentication with a json_invalid 422.
    FUZZ_CHECK(!error.empty());
    FUZZ_CHECK(magnetar::fuzz::IsJson(JsonInvalidResponse(error).body));
    return 0;
  }
  // What a successful parse promises the handlers: JSON that serialises back to JSON (the
  // Idempotency-Key fingerprint is taken over that form).
  const std::string canonical = json::serialize(*body);
  FUZZ_CHECK(magnetar::fuzz::IsJson(canonical));
  FUZZ_CHECK(magnetar::relay::IdempotencyGate::Fingerprint(canonical).size() == 64);

  Single(*body);
  Bulk(*body);
  Poll(*body);
  return 0;
}
