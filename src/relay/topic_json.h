#pragma once

#include <string>

#include "core/topic_catalog.h"

namespace magnetar::relay {

// TopicPublic (spec §1.17): topic_id, topic_name, owner_id, created_at, description.
void AppendTopicPublic(std::string& out, const core::TopicRecord& record);
std::string TopicPublicJson(const core::TopicRecord& record);

}  // namespace magnetar::relay
