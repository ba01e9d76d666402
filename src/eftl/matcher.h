#pragma once

// Content matchers (spec/eftl.md §c.1): a JSON object of terms that must all hold.
//   "f":"text"  field f is a string equal to "text"      (type-strict: never a long)
//   "f":123     field f is a long equal to 123           (type-strict: never a string)
//   "f":true    field f is present, any type
//   "f":false   field f is absent
// An empty text or {} matches every message. Anything else (bad JSON, other value types, empty
// field names, string values over kMaxMatcherString characters) is refused with a reason; the
// session answers it with UNSUBSCRIBED err 22. A field given twice counts once, with its last
// value (the JSON parser keeps the last duplicate). Pure (no server dependencies).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "eftl/codec.h"

namespace magnetar::eftl {

inline constexpr size_t kMaxMatcherString = 256;  // FTL's cap on matcher string values
inline constexpr size_t kMaxMatcherTerms = 64;

struct MatchTerm {
  enum class Kind { kString, kLong, kPresent, kAbsent };
  std::string field;
  Kind kind = Kind::kPresent;
  std::string text;    // kString
  int64_t number = 0;  // kLong

  bool is_equality() const { return kind == Kind::kString || kind == Kind::kLong; }
};

struct Matcher {
  std::vector<MatchTerm> terms;

  bool Matches(const Message& m) const;
  // The string value of a term on `field` (the `_dest` of EMS-style channels), if any.
  std::optional<std::string> StringTerm(std::string_view field) const;
};

Result<Matcher> ParseMatcher(std::string_view text);

// The index key of an equality on (field, value): the same bytes for a term and for a message
// field that satisfies it, distinct between strings and longs.
std::string EqualityKey(std::string_view field, const Field& value);
std::string EqualityKey(const MatchTerm& term);

}  // namespace magnetar::eftl
