#pragma once

#include <string>

#include "auth/user.h"
#include "core/topic_catalog.h"

namespace magnetar::relay {

// UserPublic (spec §1.4): user_id, username, email, is_active, created_at, permissions,
// owned_topics. The password hash never leaves the server.
std::string UserPublicJson(const auth::User& user, core::TopicCatalog& topics);

}  // namespace magnetar::relay
