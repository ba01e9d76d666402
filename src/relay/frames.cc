#include "relay/frames.h"

#include "common/base64.h"
#include "common/time_format.h"
#include "relay/json_util.h"

namespace magnetar::relay {

namespace {

void AppendMetadata(std::string& out, const core::Message& m) {
  out.push_back('{');
  bool first = true;
  for (const auto& [k, v] : m.properties) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(out, k);
    out.push_back(':');
    AppendJsonString(out, v);
  }
  out.push_back('}');
}

void AppendCommonFields(std::string& out, const core::Message& m) {
  out += R"("message_id":")";
  m.id.AppendTo(out);
  out += R"(","topic":)";
  AppendJsonString(out, m.topic);
  out += R"(,"payload":)";
  AppendPayloadJson(out, m);
  out += R"(,"timestamp":")";
  AppendRfc3339(out, m.publish_time);
  out += R"(","metadata":)";
  AppendMetadata(out, m);
}

}  // namespace

void AppendPayloadJson(std::string& out, const core::Message& m) {
  if (m.format == core::PayloadFormat::kJson) {
    out += m.payload;
    return;
  }
  out += R"({"encoding":"base64","data":")";
  out += Base64Encode(m.payload);
  out += R"("})";
}

core::Encoded MessageFrame(const core::MessagePtr& message) {
  return message->encodings.Get(core::EncodingCache::kRelayFrame, [&] {
    std::string out;
    out.reserve(message->payload.size() + message->topic.size() + 160);
    out += R"({"type":"message",)";
    AppendCommonFields(out, *message);
    out.push_back('}');
    return out;
  });
}

void AppendStoredMessage(std::string& out, const core::Message& message) {
  out.push_back('{');
  AppendCommonFields(out, message);
  out.push_back('}');
}

}  // namespace magnetar::relay
