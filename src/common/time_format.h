#pragma once

// The one timestamp spelling Magnetar emits (relay spec correction D4): RFC 3339, UTC, `Z`, always
// six fractional digits, e.g. 2025-10-09T12:00:00.123456Z.

#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"

namespace magnetar {

std::string FormatRfc3339(UnixMicros t);
// Appends to `out` without allocating a temporary (hot path: every message frame has one).
void AppendRfc3339(std::string& out, UnixMicros t);

// Parses what FormatRfc3339 writes, and also `+00:00` offsets and fewer fraction digits.
std::optional<UnixMicros> ParseRfc3339(std::string_view s);

}  // namespace magnetar
