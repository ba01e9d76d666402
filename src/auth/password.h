#pragma once

// Password hashing (relay spec §5.2): Argon2id through libargon2, PHC strings compatible with the
// reference server's pwdlib/argon2-cffi hashes. Stateless and thread-safe.
//
// COST: HashPassword and VerifyPassword each take ~0.1 s of CPU and 64 MiB of memory (m=65536 KiB,
// t=3, p=4). They must never run on an I/O (network) thread: hand them to a worker pool.

#include <cstddef>
#include <string>
#include <string_view>

namespace magnetar::auth {

// The longest password accepted, in characters (code points, as the 422 messages count them).
// Argon2 pre-hashes its input, but megabyte passwords would still be read and hashed on every
// login attempt for nothing; register and password changes refuse longer ones (422) and login
// refuses them without hashing. Django uses the same bound.
inline constexpr size_t kMaxPasswordChars = 4096;

// Argon2id, m=65536 KiB, t=3, p=4, 16-byte random salt, 32-byte hash:
// "$argon2id$v=19$m=65536,t=3,p=4$<salt b64>$<hash b64>".
// Returns an empty string if hashing fails (only on memory exhaustion); callers must treat an
// empty result as an error, never store it (an empty hash means "no local password").
std::string HashPassword(std::string_view password);

// True when `password` matches `phc`. Accepts any valid argon2id / argon2i / argon2d PHC string
// (any parameters, with or without `v=`). False for a mismatch and for a malformed string.
bool VerifyPassword(std::string_view password, std::string_view phc);

// True when `phc` is not an argon2id v=19 hash with the parameters HashPassword uses (so it should
// be replaced by a fresh hash at the next successful login). True for malformed strings.
bool PasswordNeedsRehash(std::string_view phc);

}  // namespace magnetar::auth
