#pragma once

// Where a Pulsar topic name lands for a caller: tenant -> owner user id (spec §7 as Magnetar maps
// it), permission and namespace checks. Shared by the binary protocol's connections and the admin
// REST routes. Reads the user store: call where blocking is allowed (RunStoreWork).

#include <optional>
#include <string>

#include "auth/user.h"
#include "auth/user_store.h"
#include "core/message.h"
#include "pulsar/codec/frame.h"
#include "pulsar/topic_name.h"

namespace magnetar::pulsar {

struct TopicResolution {
  std::optional<proto::ServerError> error;  // AuthorizationError, TopicNotFound, ServiceNotReady
  std::string message;
  core::TopicKey topic;
};

// `needed`: the permission the caller must hold (nullopt: read or write, either will do).
// Does not create anything.
TopicResolution ResolveTopic(auth::UserStore& users, const auth::User& user,
                             const PulsarTopicName& name, std::optional<auth::Permission> needed);

// The local names of partition i of `local` ("T-partition-i"), and the reverse: the index when
// `local` names a partition.
std::string PartitionName(const std::string& local, uint32_t index);
std::optional<uint32_t> PartitionIndex(const std::string& local, std::string* base);

}  // namespace magnetar::pulsar
