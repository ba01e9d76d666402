#include "pulsar/topic_name.h"

#include <algorithm>

#include "core/topic_name.h"

namespace magnetar::pulsar {

std::string PulsarTopicName::FullName() const {
  return std::string(persistent ? "persistent://" : "non-persistent://") + tenant + "/" + ns + "/" +
         local;
}

std::optional<PulsarTopicName> ParsePulsarTopic(std::string_view name, std::string* error) {
  PulsarTopicName out;
  std::string_view rest = name;
  if (auto scheme = rest.find("://"); scheme != std::string_view::npos) {
    const std::string_view domain = rest.substr(0, scheme);
    if (domain == "persistent") {
      out.persistent = true;
    } else if (domain == "non-persistent") {
      out.persistent = false;
    } else {
      *error = "Invalid topic domain '" + std::string(domain) + "' in '" + std::string(name) + "'";
      return std::nullopt;
    }
    rest.remove_prefix(scheme + 3);
  }
  const size_t slashes = static_cast<size_t>(std::count(rest.begin(), rest.end(), '/'));
  if (slashes == 0 && name.find("://") == std::string_view::npos) {
    out.tenant = kPublicTenant;
    out.ns = kDefaultNamespace;
    out.local = std::string(rest);
  } else if (slashes == 2) {
    const size_t a = rest.find('/');
    const size_t b = rest.find('/', a + 1);
    out.tenant = std::string(rest.substr(0, a));
    out.ns = std::string(rest.substr(a + 1, b - a - 1));
    out.local = std::string(rest.substr(b + 1));
  } else {
    *error = "Invalid topic name '" + std::string(name) +
             "': expected [persistent://]<tenant>/<namespace>/<topic>";
    return std::nullopt;
  }
  if (out.tenant.empty() || out.ns.empty()) {
    *error = "Invalid topic name '" + std::string(name) + "': empty tenant or namespace";
    return std::nullopt;
  }
  if (auto bad = core::ValidateTopicName(out.local)) {
    *error = "Invalid topic name '" + std::string(name) + "': " + *bad;
    return std::nullopt;
  }
  return out;
}

}  // namespace magnetar::pulsar
