#pragma once

// The eFTL message model and its JSON encoding (spec/eftl.md §a.4): typed fields (string, long,
// double, datetime, opaque, nested message and homogeneous arrays of those but opaque), decoded
// from and encoded to the wire form without loss:
//   string "x" | long 12 | double {"_d_":1.5} or {"_d_":"NaN"|"Infinity"|"-Infinity"|"+Inf"|"-Inf"}
//   datetime {"_m_":<ms since epoch>} | opaque {"_o_":"<base64>"} | message {…} | arrays [ … ]
//
// Two decoding modes:
//   kWire     what an eFTL client sends: anything that is not one of the types above (booleans,
//             null, mixed arrays, integers beyond 64 bits, bad wrappers) is an error naming the
//             field, so a client learns what it did wrong.
//   kLenient  any JSON object stored by another front end (relay payloads): integers become longs,
//             other numbers doubles, booleans the strings "true"/"false", null fields are left
//             out, a mixed array of numbers becomes a double array and any other mixed array is
//             left out. Never fails on a JSON object (docs/eftl.md has the whole mapping).
//
// Bounded: nesting deeper than kMaxDepth is refused (both modes), and the caller bounds the text
// (the WebSocket frame limit). Pure: no server dependencies, so the client and fuzzers link it.

#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base64.h"  // Base64Encode, for opaque fields
#include "common/json_string.h"
#include "common/status.h"

namespace magnetar::eftl {

inline constexpr int kMaxDepth = 32;

enum class FieldType : uint8_t {
  kString,
  kLong,
  kDouble,
  kDateTime,  // milliseconds since the Unix epoch
  kOpaque,
  kMessage,
  kStringArray,
  kLongArray,
  kDoubleArray,
  kDateTimeArray,
  kMessageArray,
  kEmptyArray,  // [] : the element type is unknown (spec §a.4)
};

const char* FieldTypeName(FieldType type);

struct Message;

struct Field {
  FieldType type = FieldType::kString;
  std::string text;                // kString; kOpaque (the raw bytes)
  int64_t number = 0;              // kLong; kDateTime
  double real = 0;                 // kDouble
  std::vector<std::string> texts;  // kStringArray
  std::vector<int64_t> numbers;    // kLongArray; kDateTimeArray
  std::vector<double> reals;       // kDoubleArray
  std::vector<Message> messages;   // kMessage (exactly one); kMessageArray

  static Field String(std::string v);
  static Field Long(int64_t v);
  static Field Double(double v);
  static Field DateTime(int64_t millis);
  static Field Opaque(std::string bytes);
  static Field Nested(Message m);
};

// A plain struct rather than std::pair: pair's traits need Field (and so Message) complete,
// which clang checks while Message is still being defined.
struct NamedField {
  std::string name;
  Field field;
};

// Fields in the order they were given; names are unique (a later duplicate replaces).
struct Message {
  std::vector<NamedField> fields;

  const Field* Find(std::string_view name) const;
  void Set(std::string name, Field field);
  bool empty() const { return fields.empty(); }
};

enum class DecodeMode { kWire, kLenient };

// `value` must be a JSON object.
Result<Message> DecodeMessage(const boost::json::value& value, DecodeMode mode);
// JSON text -> value, like boost::json::parse but with correctly rounded doubles (so doubles
// keep their exact value) and a nesting limit. Every eFTL frame is read with it.
Result<boost::json::value> ParseJson(std::string_view text, int max_depth);
// Parses `text` (a JSON object) then decodes it.
Result<Message> ParseMessage(std::string_view text, DecodeMode mode);

// Canonical compact wire form. Decoding it again gives the same message (NaN stays NaN, -0.0
// stays -0.0, every double keeps its exact value).
std::string EncodeMessage(const Message& message);
void AppendMessage(std::string& out, const Message& message);

// Small helpers shared with the frame builders (and magnetar::AppendJsonString, included above).
void AppendDouble(std::string& out, double v);  // shortest round-trip form, always a JSON number
// Standard alphabet; padding optional; anything else (bad characters, bad length) fails.
bool Base64Decode(std::string_view text, std::string* out);

}  // namespace magnetar::eftl
