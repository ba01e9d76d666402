#include "auth/password.h"

#include <argon2.h>

#include <cstdint>
#include <cstring>
#include <optional>

#include "common/random.h"

namespace magnetar::auth {
namespace {

constexpr uint32_t kTimeCost = 3;
constexpr uint32_t kMemoryCostKib = 65536;
constexpr uint32_t kParallelism = 4;
constexpr uint32_t kSaltBytes = 16;
constexpr uint32_t kHashBytes = 32;

// The argon2 variant named by a PHC string's prefix ("$argon2id$..."), or nullopt.
std::optional<argon2_type> TypeFromPrefix(std::string_view phc) {
  if (phc.starts_with("$argon2id$")) return Argon2_id;
  if (phc.starts_with("$argon2i$")) return Argon2_i;
  if (phc.starts_with("$argon2d$")) return Argon2_d;
  return std::nullopt;
}

// Consumes "<name>=<decimal>" from the front of `s`; nullopt when absent or out of range.
std::optional<uint32_t> TakeParam(std::string_view& s, std::string_view name) {
  if (!s.starts_with(name) || s.size() <= name.size() || s[name.size()] != '=') {
    return std::nullopt;
  }
  s.remove_prefix(name.size() + 1);
  uint64_t value = 0;
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') {
    value = value * 10 + static_cast<uint64_t>(s[digits] - '0');
    if (value > UINT32_MAX) return std::nullopt;
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  s.remove_prefix(digits);
  return static_cast<uint32_t>(value);
}

bool IsB64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Unpadded standard base64 of `bytes` bytes has exactly this many characters.
bool IsB64OfLength(std::string_view s, size_t bytes) {
  if (s.size() != (bytes * 4 + 2) / 3) return false;
  for (char c : s) {
    if (!IsB64Char(c)) return false;
  }
  return true;
}

}  // namespace

std::string HashPassword(std::string_view password) {
  const std::string salt = RandomBytes(kSaltBytes);
  std::string encoded(
      argon2_encodedlen(kTimeCost, kMemoryCostKib, kParallelism, kSaltBytes, kHashBytes, Argon2_id),
      '\0');
  const int rc = argon2id_hash_encoded(kTimeCost, kMemoryCostKib, kParallelism, password.data(),
                                       password.size(), salt.data(), salt.size(), kHashBytes,
                                       encoded.data(), encoded.size());
  if (rc != ARGON2_OK) return {};
  encoded.resize(std::strlen(encoded.c_str()));
  return encoded;
}

bool VerifyPassword(std::string_view password, std::string_view phc) {
  const std::optional<argon2_type> type = TypeFromPrefix(phc);
  if (!type) return false;
  // libargon2 wants a NUL-terminated string; an embedded NUL would silently truncate it.
  if (phc.find('\0') != std::string_view::npos) return false;
  const std::string encoded(phc);
  return argon2_verify(encoded.c_str(), password.data(), password.size(), *type) == ARGON2_OK;
}

bool PasswordNeedsRehash(std::string_view phc) {
  constexpr std::string_view kPrefix = "$argon2id$";
  if (!phc.starts_with(kPrefix)) return true;
  std::string_view s = phc.substr(kPrefix.size());
  const auto version = TakeParam(s, "v");
  if (!version || !s.starts_with('$')) return true;
  s.remove_prefix(1);
  const auto m = TakeParam(s, "m");
  if (!m || !s.starts_with(',')) return true;
  s.remove_prefix(1);
  const auto t = TakeParam(s, "t");
  if (!t || !s.starts_with(',')) return true;
  s.remove_prefix(1);
  const auto p = TakeParam(s, "p");
  if (!p || !s.starts_with('$')) return true;
  s.remove_prefix(1);
  const size_t dollar = s.find('$');
  if (dollar == std::string_view::npos) return true;
  const std::string_view salt = s.substr(0, dollar);
  const std::string_view hash = s.substr(dollar + 1);
  return *version != ARGON2_VERSION_13 || *m != kMemoryCostKib || *t != kTimeCost ||
         *p != kParallelism || !IsB64OfLength(salt, kSaltBytes) || !IsB64OfLength(hash, kHashBytes);
}

}  // namespace magnetar::auth
