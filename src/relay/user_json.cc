#include "relay/user_json.h"

#include "common/time_format.h"
#include "relay/json_util.h"

namespace magnetar::relay {

std::string UserPublicJson(const auth::User& user, core::TopicCatalog& topics) {
  std::string out = R"({"user_id":)";
  AppendJsonString(out, user.user_id);
  out += R"(,"username":)";
  AppendJsonString(out, user.username);
  out += R"(,"email":)";
  if (user.email) {
    AppendJsonString(out, *user.email);
  } else {
    out += "null";
  }
  out += user.is_active ? R"(,"is_active":true)" : R"(,"is_active":false)";
  out += R"(,"created_at":")";
  AppendRfc3339(out, user.created_at);
  out += R"(","permissions":[)";
  for (size_t i = 0; i < user.permissions.size(); ++i) {
    if (i) out.push_back(',');
    AppendJsonString(out, user.permissions[i]);
  }
  out += R"(],"owned_topics":[)";
  if (auto owned = topics.ListByOwner(user.user_id); owned.ok()) {
    for (size_t i = 0; i < owned->size(); ++i) {
      if (i) out.push_back(',');
      AppendJsonString(out, (*owned)[i].name);
    }
  }
  out += "]}";
  return out;
}

}  // namespace magnetar::relay
