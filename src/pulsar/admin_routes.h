#pragma once

// The part of Pulsar's admin REST API (/admin/v2) that manages partitioned topics, on the main
// HTTP port, so `pulsar-admin topics create-partitioned-topic` and HTTP scripts work:
//   PUT  /admin/v2/persistent/{tenant}/{namespace}/{topic}/partitions   body: N (JSON number)
//        204; 409 when the topic exists; 412 when N is not 1..kMaxPartitions
//   POST the same path, body N: grows a partitioned topic to N partitions (Pulsar never shrinks
//        one): 204; 404 when it is not partitioned; 409 when N is not larger
//   GET  the same path: {"partitions": N} (0 for a topic that is not partitioned or unknown)
// Auth: `Authorization: Bearer <relay access token>`, tenants as for the binary protocol (the
// caller's own, `public`, or any with the admin permission); writes need the write permission.
// Errors are Pulsar's shape: {"reason": "..."}.
//
// The count is the topic record's (core::TopicRecord::partitions), kept by every storage engine.

#include "auth/authenticator.h"
#include "auth/user_store.h"
#include "common/clock.h"
#include "core/broker.h"
#include "core/topic_catalog.h"
#include "http/http_service.h"
#include "net/blocking_pool.h"

namespace magnetar::pulsar {

inline constexpr uint32_t kMaxPartitions = 4096;

struct AdminDeps {
  core::Broker& broker;  // only to ask whether its store blocks
  core::TopicCatalog& topics;
  auth::UserStore& users;
  auth::Authenticator& authenticator;
  net::BlockingPool& blocking;
  const Clock& clock;
};

// Adds the routes; `deps` must outlive the service.
void RegisterAdminRoutes(http::HttpService& service, const AdminDeps& deps);

}  // namespace magnetar::pulsar
