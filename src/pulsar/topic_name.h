#pragma once

// Pulsar topic names (spec/pulsar-binary.md §7) as Magnetar maps them onto its topics:
//   persistent://<tenant>/<namespace>/<topic>   full form
//   non-persistent://<tenant>/<namespace>/<topic>
//   <tenant>/<namespace>/<topic>                 persistent
//   <topic>                                      persistent://public/default/<topic>
// The tenant is a relay username; `public` (what clients expand short names to) means "the
// caller's own tenant". Only the namespace `default` exists. The local name follows the relay's
// topic-name rule, so `T-partition-3` is just another topic.

#include <optional>
#include <string>
#include <string_view>

namespace magnetar::pulsar {

inline constexpr char kPublicTenant[] = "public";
inline constexpr char kDefaultNamespace[] = "default";

struct PulsarTopicName {
  bool persistent = true;
  std::string tenant;
  std::string ns;
  std::string local;  // the topic's own name

  std::string FullName() const;  // persistent://tenant/ns/local
};

// nullopt with `*error` set (the message of an InvalidTopicName error) when malformed.
std::optional<PulsarTopicName> ParsePulsarTopic(std::string_view name, std::string* error);

}  // namespace magnetar::pulsar
