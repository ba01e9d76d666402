#include "pulsar_ws/frames.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "common/time_format.h"
#include "pulsar_ws/codec.h"

namespace magnetar::pulsar_ws {

namespace json = boost::json;

namespace {

core::Encoded FramePrefix(const core::MessagePtr& m) {
  return m->encodings.Get(core::EncodingCache::kPulsarWsFrame, [&] {
    std::string out;
    out.reserve(m->payload.size() * 4 / 3 + 200);
    out += R"({"messageId":")";
    out += EncodeMessageId(m->id);
    out += R"(","payload":")";
    out += Base64Encode(m->payload);
    out += R"(","properties":{)";
    bool first = true;
    std::string_view event_time;
    for (const auto& [k, v] : m->properties) {
      if (k == kEventTimeProperty) {
        event_time = v;
        continue;
      }
      if (!first) out.push_back(',');
      first = false;
      AppendJsonString(out, k);
      out.push_back(':');
      AppendJsonString(out, v);
    }
    out += R"(},"publishTime":")";
    out += FormatPulsarTime(m->publish_time);
    out.push_back('"');
    if (!event_time.empty()) {
      out += R"(,"eventTime":)";
      AppendJsonString(out, event_time);
    }
    if (!m->key.empty()) {
      out += R"(,"key":)";
      AppendJsonString(out, m->key);
    }
    return out;
  });
}

std::optional<std::string> ScalarText(const json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  if (v.is_int64() || v.is_uint64() || v.is_double() || v.is_bool()) return json::serialize(v);
  return std::nullopt;
}

}  // namespace

std::string ConsumerFrame(const core::MessagePtr& message, uint32_t redelivery_count) {
  const core::Encoded prefix = FramePrefix(message);
  std::string out;
  out.reserve(prefix->size() + 32);
  out += *prefix;
  out += R"(,"redeliveryCount":)";
  out += std::to_string(redelivery_count);
  out.push_back('}');
  return out;
}

std::string ReceiptOk(MessageId id, const std::optional<std::string>& context) {
  std::string out = R"({"result":"ok","messageId":")";
  out += EncodeMessageId(id);
  out.push_back('"');
  if (context) {
    out += R"(,"context":)";
    AppendJsonString(out, *context);
  }
  out.push_back('}');
  return out;
}

std::string ReceiptError(int code, std::string_view message,
                         const std::optional<std::string>& context) {
  std::string out = R"({"result":"send-error:)";
  out += std::to_string(code);
  out += R"(","errorMsg":)";
  AppendJsonString(out, message);
  if (context) {
    out += R"(,"context":)";
    AppendJsonString(out, *context);
  }
  out.push_back('}');
  return out;
}

PublishParse ParsePublishFrame(std::string_view text, int64_t now_millis) {
  PublishParse out;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    out.error_code = 3;
    out.error_message = "Failed to deserialize from JSON";
    return out;
  }
  const json::object& obj = v.get_object();
  if (const json::value* c = obj.if_contains("context"); c && !c->is_null()) {
    out.context = ScalarText(*c);
    if (!out.context) out.context = json::serialize(*c);
  }
  const json::value* payload = obj.if_contains("payload");
  if (!payload || !payload->is_string()) {
    out.error_code = 7;
    out.error_message = "Invalid Base64 message-payload error=missing payload";
    return out;
  }
  auto bytes = Base64Decode(payload->get_string());
  if (!bytes) {
    out.error_code = 7;
    out.error_message = "Invalid Base64 message-payload error=Illegal base64 character";
    return out;
  }
  auto draft = std::make_shared<core::Message>();
  // A payload that is a JSON object is kept as JSON, so relay subscribers receive the object
  // itself (docs/pulsar-websocket.md, cross-protocol mapping); the bytes are unchanged.
  draft->format = core::PayloadFormat::kBinary;
  if (!bytes->empty() && bytes->front() == '{') {
    boost::system::error_code jec;
    json::value parsed = json::parse(*bytes, jec);
    if (!jec && parsed.is_object()) draft->format = core::PayloadFormat::kJson;
  }
  draft->payload = std::move(*bytes);
  if (const json::value* props = obj.if_contains("properties"); props && !props->is_null()) {
    if (!props->is_object()) {
      out.error_code = 3;
      out.error_message = "Failed to deserialize from JSON: properties must be an object";
      return out;
    }
    for (const auto& kv : props->get_object()) {
      auto text = ScalarText(kv.value());
      if (!text) {
        out.error_code = 3;
        out.error_message = "Failed to deserialize from JSON: property values must be strings";
        return out;
      }
      if (kv.key() == kEventTimeProperty) continue;
      draft->properties.emplace_back(std::string(kv.key()), std::move(*text));
    }
  }
  if (const json::value* key = obj.if_contains("key"); key && !key->is_null()) {
    auto text = ScalarText(*key);
    if (text) draft->key = std::move(*text);
  }
  if (const json::value* et = obj.if_contains("eventTime"); et && !et->is_null()) {
    std::optional<UnixMicros> t;
    if (et->is_string()) t = ParseRfc3339(et->get_string());
    if (!t) {
      out.error_code = 7;
      out.error_message = "Failed to parse eventTime: " + json::serialize(*et);
      return out;
    }
    draft->properties.emplace_back(kEventTimeProperty, FormatPulsarTime(*t));
  }
  auto long_field = [&](const char* name) -> int64_t {
    const json::value* f = obj.if_contains(name);
    if (!f) return 0;
    if (f->is_int64()) return f->get_int64();
    if (f->is_uint64()) return static_cast<int64_t>(std::min<uint64_t>(f->get_uint64(), INT64_MAX));
    if (f->is_string()) return ParseJavaLong(f->get_string()).value_or(0);
    return 0;
  };
  if (const json::value* seq = obj.if_contains("sequenceId"); seq && !seq->is_null()) {
    std::optional<int64_t> value;
    if (seq->is_int64()) value = seq->get_int64();
    if (seq->is_uint64() && seq->get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
      value = static_cast<int64_t>(seq->get_uint64());
    }
    if (seq->is_string()) value = ParseJavaLong(seq->get_string());
    if (!value || *value < 0) {
      out.error_code = 3;
      out.error_message = "Failed to deserialize from JSON: sequenceId must be a non-negative long";
      return out;
    }
    out.sequence_id = static_cast<uint64_t>(*value);
  }
  if (int64_t at = long_field("deliverAt"); at > 0) out.deliver_at_millis = at;
  if (int64_t after = long_field("deliverAfterMs"); after > 0 && after < INT64_MAX - now_millis) {
    out.deliver_at_millis = now_millis + after;
  }
  out.draft = std::move(draft);
  return out;
}

}  // namespace magnetar::pulsar_ws
