#include "auth/user.h"

#include <algorithm>

namespace magnetar::auth {

std::optional<Permission> ParsePermission(std::string_view name) {
  if (name == "admin") return Permission::kAdmin;
  if (name == "read") return Permission::kRead;
  if (name == "write") return Permission::kWrite;
  return std::nullopt;
}

const char* PermissionName(Permission p) {
  switch (p) {
    case Permission::kAdmin:
      return "admin";
    case Permission::kRead:
      return "read";
    case Permission::kWrite:
      return "write";
  }
  return "";
}

bool User::Has(Permission p) const {
  const std::string_view name = PermissionName(p);
  return std::any_of(permissions.begin(), permissions.end(),
                     [&](const std::string& s) { return s == name; });
}

}  // namespace magnetar::auth
