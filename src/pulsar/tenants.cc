#include "pulsar/tenants.h"

#include <charconv>

#include "pulsar/connection_internal.h"

namespace magnetar::pulsar {

namespace {
constexpr std::string_view kPartitionInfix = "-partition-";
}  // namespace

TopicResolution ResolveTopic(auth::UserStore& users, const auth::User& user,
                             const PulsarTopicName& name, std::optional<auth::Permission> needed) {
  TopicResolution r;
  const bool allowed = needed ? user.Has(*needed)
                              : user.Has(auth::Permission::kRead) || user.Has(auth::Permission::kWrite);
  if (!allowed) {
    r.error = proto::AuthorizationError;
    r.message = !needed ? std::string("Permission 'read' or 'write' required")
                        : std::string("Permission '") +
                              (*needed == auth::Permission::kWrite ? "write" : "read") + "' required";
    return r;
  }
  std::string owner;
  if (name.tenant == kPublicTenant || name.tenant == user.username) {
    owner = user.user_id;
  } else if (user.Has(auth::Permission::kAdmin)) {
    auto other = users.GetByUsername(name.tenant);
    if (!other.ok()) {
      const bool missing = other.status().code() == StatusCode::kNotFound;
      r.error = missing ? proto::TopicNotFound : proto::ServiceNotReady;
      r.message = missing ? "Tenant '" + name.tenant + "' not found" : other.status().message();
      return r;
    }
    owner = other->user_id;
  } else {
    r.error = proto::AuthorizationError;
    r.message = "Not authorized for tenant '" + name.tenant + "'";
    return r;
  }
  if (name.ns != kDefaultNamespace) {
    r.error = proto::TopicNotFound;
    r.message = "Namespace '" + name.tenant + "/" + name.ns + "' not found (only 'default' exists)";
    return r;
  }
  r.topic = core::TopicKey{name.persistent ? owner : internal::kNonPersistentOwnerPrefix + owner,
                           name.local};
  return r;
}

std::string PartitionName(const std::string& local, uint32_t index) {
  return local + std::string(kPartitionInfix) + std::to_string(index);
}

std::optional<uint32_t> PartitionIndex(const std::string& local, std::string* base) {
  const size_t at = local.rfind(kPartitionInfix);
  if (at == std::string::npos || at == 0) return std::nullopt;
  const std::string_view digits = std::string_view(local).substr(at + kPartitionInfix.size());
  if (digits.empty() || digits.size() > 9 || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
  uint32_t index = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  if (base) *base = local.substr(0, at);
  return index;
}

}  // namespace magnetar::pulsar
