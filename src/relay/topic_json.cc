#include "relay/topic_json.h"

#include "common/time_format.h"
#include "relay/json_util.h"

namespace magnetar::relay {

void AppendTopicPublic(std::string& out, const core::TopicRecord& record) {
  out += R"({"topic_id":)";
  AppendJsonString(out, record.topic_id);
  out += R"(,"topic_name":)";
  AppendJsonString(out, record.name);
  out += R"(,"owner_id":)";
  AppendJsonString(out, record.owner_id);
  out += R"(,"created_at":")";
  AppendRfc3339(out, record.created_at);
  out += R"(","description":)";
  if (record.description) {
    AppendJsonString(out, *record.description);
  } else {
    out += "null";
  }
  out.push_back('}');
}

std::string TopicPublicJson(const core::TopicRecord& record) {
  std::string out;
  AppendTopicPublic(out, record);
  return out;
}

}  // namespace magnetar::relay
