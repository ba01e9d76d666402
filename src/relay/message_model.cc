#include "relay/message_model.h"

#include "core/topic_name.h"
#include "relay/validation.h"

namespace magnetar::relay {

core::DraftPtr MessageRequest::ToDraft(UnixMicros now) && {
  auto draft = std::make_shared<core::Message>();
  draft->topic = std::move(topic);
  draft->payload = std::move(payload_json);
  draft->format = core::PayloadFormat::kJson;
  draft->properties = std::move(metadata);
  if (ttl_seconds) draft->expires_at = now + *ttl_seconds * 1000000;
  return draft;
}

std::optional<MessageRequest> ParseMessageRequest(const json::value& v, const LocationFn& loc,
                                                  ValidationErrors& errors) {
  if (!v.is_object()) {
    errors.Add("model_attributes_type", loc(),
               "Input should be a valid dictionary or object to extract fields from", v);
    return std::nullopt;
  }
  const auto& obj = v.get_object();
  MessageRequest out;
  bool ok = true;

  if (const json::value* topic = obj.if_contains("topic")) {
    if (topic->is_string() && !core::ValidateTopicName(topic->get_string())) {
      out.topic = topic->get_string();  // the common case, without building a location
    } else {
      auto name = TopicNameValue(*topic, Loc(loc(), "topic"), errors);
      ok &= name.has_value();
      if (name) out.topic = std::move(*name);
    }
  } else {
    errors.Missing(Loc(loc(), "topic"), v);
    ok = false;
  }

  if (const json::value* payload = obj.if_contains("payload")) {
    if (payload->is_object()) {
      out.payload_json = SerializeJson(*payload);
    } else {
      errors.Add("dict_type", Loc(loc(), "payload"), "Input should be a valid dictionary", *payload);
      ok = false;
    }
  } else {
    errors.Missing(Loc(loc(), "payload"), v);
    ok = false;
  }

  if (const json::value* ttl = obj.if_contains("ttl"); ttl && !ttl->is_null()) {
    auto seconds =
        ttl->is_int64() ? std::optional(ttl->get_int64()) : ValidateInt(*ttl, Loc(loc(), "ttl"), errors);
    if (!seconds) {
      ok = false;
    } else if (*seconds <= 0) {
      json::object ctx;
      ctx["gt"] = 0;
      errors.Add("greater_than", Loc(loc(), "ttl"), "Input should be greater than 0", *ttl,
                 std::move(ctx));
      ok = false;
    } else {
      // Bounded so expiry arithmetic cannot overflow (about 290 years).
      out.ttl_seconds = std::min<int64_t>(*seconds, int64_t{9'000'000'000});
    }
  }

  if (const json::value* metadata = obj.if_contains("metadata"); metadata && !metadata->is_null()) {
    if (!metadata->is_object()) {
      errors.Add("dict_type", Loc(loc(), "metadata"), "Input should be a valid dictionary",
                 *metadata);
      ok = false;
    } else {
      for (const auto& kv : metadata->get_object()) {
        if (!kv.value().is_string()) {
          errors.Add("string_type", Loc(Loc(loc(), "metadata"), json::string(kv.key())),
                     "Input should be a valid string", kv.value());
          ok = false;
          continue;
        }
        out.metadata.emplace_back(std::string(kv.key()), std::string(kv.value().get_string()));
      }
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

}  // namespace magnetar::relay
