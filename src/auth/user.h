#pragma once

// The user record and its permissions (relay spec §5.1). Plain values: no locking of their own; a
// User is copied out of a UserStore and may be read from any thread once the copy is made.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"

namespace magnetar::auth {

enum class Permission { kAdmin, kRead, kWrite };

// "admin" | "read" | "write" (exact, case-sensitive); nullopt for anything else.
std::optional<Permission> ParsePermission(std::string_view name);
// "admin" / "read" / "write".
const char* PermissionName(Permission p);

struct User {
  std::string user_id;  // UUID4 with hyphens
  std::string username;
  std::optional<std::string> email;
  std::string password_hash;  // PHC string; empty = no local password (e.g. OIDC-only)
  bool is_active = true;
  UnixMicros created_at = 0;
  std::vector<std::string> permissions;  // as given, order kept, duplicates allowed

  // True when `permissions` names `p`.
  bool Has(Permission p) const;
};

}  // namespace magnetar::auth
