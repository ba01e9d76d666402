#pragma once

// Cryptographically strong random values (OpenSSL RAND_bytes): ids, secrets, salts.

#include <cstddef>
#include <string>
#include <string_view>

namespace magnetar {

std::string RandomBytes(size_t n);
// UUID version 4, lower-case, with hyphens (36 chars).
std::string NewUuid4();
// UUID version 4 as 32 lower-case hex characters (the JWT `jti` form).
std::string NewUuid4Hex();
// `n` random bytes as lower-case hex.
std::string RandomHex(size_t n);

std::string HexEncode(std::string_view bytes);
std::string Base64UrlEncode(std::string_view bytes);  // no padding
std::string Base64UrlDecode(std::string_view text, bool* ok);

// Constant-time comparison for secrets.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace magnetar
