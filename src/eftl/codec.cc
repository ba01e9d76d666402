#include "eftl/codec.h"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_stack.hpp>

#include <charconv>
#include <cmath>
#include <limits>

namespace magnetar::eftl {

namespace json = boost::json;

const char* FieldTypeName(FieldType type) {
  switch (type) {
    case FieldType::kString: return "string";
    case FieldType::kLong: return "long";
    case FieldType::kDouble: return "double";
    case FieldType::kDateTime: return "datetime";
    case FieldType::kOpaque: return "opaque";
    case FieldType::kMessage: return "message";
    case FieldType::kStringArray: return "string array";
    case FieldType::kLongArray: return "long array";
    case FieldType::kDoubleArray: return "double array";
    case FieldType::kDateTimeArray: return "datetime array";
    case FieldType::kMessageArray: return "message array";
    case FieldType::kEmptyArray: return "empty array";
  }
  return "unknown";
}

Field Field::String(std::string v) {
  Field f;
  f.type = FieldType::kString;
  f.text = std::move(v);
  return f;
}
Field Field::Long(int64_t v) {
  Field f;
  f.type = FieldType::kLong;
  f.number = v;
  return f;
}
Field Field::Double(double v) {
  Field f;
  f.type = FieldType::kDouble;
  f.real = v;
  return f;
}
Field Field::DateTime(int64_t millis) {
  Field f;
  f.type = FieldType::kDateTime;
  f.number = millis;
  return f;
}
Field Field::Opaque(std::string bytes) {
  Field f;
  f.type = FieldType::kOpaque;
  f.text = std::move(bytes);
  return f;
}
Field Field::Nested(Message m) {
  Field f;
  f.type = FieldType::kMessage;
  f.messages.push_back(std::move(m));
  return f;
}

const Field* Message::Find(std::string_view name) const {
  for (const auto& [k, v] : fields) {
    if (k == name) return &v;
  }
  return nullptr;
}

void Message::Set(std::string name, Field field) {
  for (auto& [k, v] : fields) {
    if (k == name) {
      v = std::move(field);
      return;
    }
  }
  fields.push_back(NamedField{std::move(name), std::move(field)});
}

// ---- decoding ------------------------------------------------------------------------------

namespace {

// The one-key wrapper objects of the typed encodings.
enum class Wrapper { kNone, kDouble, kDateTime, kOpaque };

Wrapper WrapperOf(const json::object& o) {
  if (o.size() != 1) return Wrapper::kNone;
  const std::string_view key = o.begin()->key();
  if (key == "_d_") return Wrapper::kDouble;
  if (key == "_m_") return Wrapper::kDateTime;
  if (key == "_o_") return Wrapper::kOpaque;
  return Wrapper::kNone;
}

bool NonFinite(std::string_view s, double* out) {
  if (s == "NaN") {
    *out = std::numeric_limits<double>::quiet_NaN();
  } else if (s == "Infinity" || s == "+Infinity" || s == "+Inf" || s == "Inf") {
    *out = std::numeric_limits<double>::infinity();
  } else if (s == "-Infinity" || s == "-Inf") {
    *out = -std::numeric_limits<double>::infinity();
  } else {
    return false;
  }
  return true;
}

// A message whose only field is named like a wrapper would read back as a typed value: the
// encoding cannot carry it (only the lenient decoder can produce one).
bool Ambiguous(const Message& m) {
  if (m.fields.size() != 1) return false;
  const std::string& n = m.fields.front().name;
  return n == "_d_" || n == "_m_" || n == "_o_";
}

// A JSON number as a double (wire doubles may be written as integers: {"_d_":1}).
bool NumberAsDouble(const json::value& v, double* out) {
  if (v.is_double()) *out = v.get_double();
  else if (v.is_int64()) *out = static_cast<double>(v.get_int64());
  else if (v.is_uint64()) *out = static_cast<double>(v.get_uint64());
  else return false;
  return true;
}

class Decoder {
 public:
  explicit Decoder(DecodeMode mode) : mode_(mode) {}

  Status DecodeObject(const json::object& o, int depth, Message* out) {
    if (depth > kMaxDepth) return InvalidArgument("message nested deeper than " + std::to_string(kMaxDepth));
    out->fields.reserve(o.size());
    for (const auto& kv : o) {
      Field f;
      bool keep = true;
      if (Status s = DecodeField(kv.key(), kv.value(), depth, &f, &keep); !s.ok()) return s;
      if (keep) out->Set(std::string(kv.key()), std::move(f));
    }
    return Status::Ok();
  }

 private:
  bool lenient() const { return mode_ == DecodeMode::kLenient; }

  static Status Bad(std::string_view name, std::string_view what) {
    return InvalidArgument("field '" + std::string(name) + "': " + std::string(what));
  }

  // A wrapper object's value; `ok` false when it is malformed.
  Status DecodeWrapper(std::string_view name, Wrapper w, const json::value& v, Field* f) {
    switch (w) {
      case Wrapper::kDouble: {
        double d = 0;
        if (v.is_string() ? NonFinite(v.get_string(), &d) : NumberAsDouble(v, &d)) {
          *f = Field::Double(d);
          return Status::Ok();
        }
        return Bad(name, "_d_ must be a number, \"NaN\", \"Infinity\" or \"-Infinity\"");
      }
      case Wrapper::kDateTime:
        if (v.is_int64()) {
          *f = Field::DateTime(v.get_int64());
          return Status::Ok();
        }
        return Bad(name, "_m_ must be an integer number of milliseconds");
      case Wrapper::kOpaque: {
        std::string bytes;
        if (v.is_string() && Base64Decode(v.get_string(), &bytes)) {
          *f = Field::Opaque(std::move(bytes));
          return Status::Ok();
        }
        return Bad(name, "_o_ must be a base64 string");
      }
      case Wrapper::kNone: break;
    }
    return Bad(name, "not a typed value");
  }

  Status DecodeField(std::string_view name, const json::value& v, int depth, Field* f, bool* keep) {
    switch (v.kind()) {
      case json::kind::string:
        *f = Field::String(std::string(v.get_string()));
        return Status::Ok();
      case json::kind::int64:
        *f = Field::Long(v.get_int64());
        return Status::Ok();
      case json::kind::uint64:
        if (!lenient()) return Bad(name, "integer out of the 64-bit signed range");
        *f = Field::Double(static_cast<double>(v.get_uint64()));
        return Status::Ok();
      case json::kind::double_:
        *f = Field::Double(v.get_double());
        return Status::Ok();
      case json::kind::bool_:
        if (!lenient()) return Bad(name, "booleans are not an eFTL field type");
        *f = Field::String(v.get_bool() ? "true" : "false");
        return Status::Ok();
      case json::kind::null:
        if (!lenient()) return Bad(name, "null is not an eFTL field type");
        *keep = false;
        return Status::Ok();
      case json::kind::object: {
        const json::object& o = v.get_object();
        if (Wrapper w = WrapperOf(o); w != Wrapper::kNone) {
          Status s = DecodeWrapper(name, w, o.begin()->value(), f);
          if (s.ok() || !lenient()) return s;
          // Lenient: a malformed wrapper is just a nested message with that one field.
        }
        Message nested;
        if (Status s = DecodeObject(o, depth + 1, &nested); !s.ok()) return s;
        if (Ambiguous(nested)) {  // lenient only (see Ambiguous)
          *keep = false;
          return Status::Ok();
        }
        *f = Field::Nested(std::move(nested));
        return Status::Ok();
      }
      case json::kind::array:
        return DecodeArray(name, v.get_array(), depth, f, keep);
    }
    return Bad(name, "unsupported JSON value");
  }

  // The element type is the first element's; every other element must have it (doubles also
  // take integers, as a JSON writer may print 2.0 as 2).
  Status DecodeArray(std::string_view name, const json::array& a, int depth, Field* f, bool* keep) {
    if (depth + 1 > kMaxDepth) return InvalidArgument("message nested deeper than " + std::to_string(kMaxDepth));
    if (a.empty()) {
      f->type = FieldType::kEmptyArray;
      return Status::Ok();
    }
    auto mixed = [&]() -> Status {
      if (!lenient()) return Bad(name, "array elements must all have the first element's type");
      *keep = false;
      return Status::Ok();
    };
    const json::value& first = a.front();
    Wrapper first_wrapper = first.is_object() ? WrapperOf(first.get_object()) : Wrapper::kNone;
    if (first.is_string()) {
      f->type = FieldType::kStringArray;
      for (const auto& e : a) {
        if (!e.is_string()) return mixed();
        f->texts.emplace_back(e.get_string());
      }
      return Status::Ok();
    }
    if (first.is_int64() || first.is_uint64() || first.is_double() ||
        first_wrapper == Wrapper::kDouble) {
      // Longs unless a double appears (lenient) or the first says double.
      bool all_long = first.is_int64();
      if (all_long) {
        for (const auto& e : a) {
          if (!e.is_int64()) {
            all_long = false;
            break;
          }
        }
        if (!all_long && !lenient()) return mixed();
      }
      if (all_long) {
        f->type = FieldType::kLongArray;
        for (const auto& e : a) f->numbers.push_back(e.get_int64());
        return Status::Ok();
      }
      if (first.is_uint64() && !lenient()) return Bad(name, "integer out of the 64-bit signed range");
      f->type = FieldType::kDoubleArray;
      for (const auto& e : a) {
        double d = 0;
        if (NumberAsDouble(e, &d)) {
          f->reals.push_back(d);
          continue;
        }
        if (e.is_object() && WrapperOf(e.get_object()) == Wrapper::kDouble) {
          Field elem;
          if (Status s = DecodeWrapper(name, Wrapper::kDouble, e.get_object().begin()->value(), &elem);
              !s.ok()) {
            if (!lenient()) return s;
            return mixed();
          }
          f->reals.push_back(elem.real);
          continue;
        }
        return mixed();
      }
      return Status::Ok();
    }
    if (first_wrapper == Wrapper::kDateTime) {
      f->type = FieldType::kDateTimeArray;
      for (const auto& e : a) {
        if (!e.is_object() || WrapperOf(e.get_object()) != Wrapper::kDateTime) return mixed();
        const json::value& ms = e.get_object().begin()->value();
        if (!ms.is_int64()) {
          if (!lenient()) return Bad(name, "_m_ must be an integer number of milliseconds");
          return mixed();
        }
        f->numbers.push_back(ms.get_int64());
      }
      return Status::Ok();
    }
    if (first_wrapper == Wrapper::kOpaque) {
      if (!lenient()) return Bad(name, "opaque arrays are not an eFTL field type");
      *keep = false;
      return Status::Ok();
    }
    if (first.is_object()) {
      f->type = FieldType::kMessageArray;
      for (const auto& e : a) {
        if (!e.is_object()) return mixed();
        if (WrapperOf(e.get_object()) != Wrapper::kNone && !lenient()) return mixed();
        Message m;
        if (Status s = DecodeObject(e.get_object(), depth + 2, &m); !s.ok()) return s;
        if (Ambiguous(m)) return mixed();  // lenient only
        f->messages.push_back(std::move(m));
      }
      return Status::Ok();
    }
    // Arrays of arrays, booleans or nulls.
    if (!lenient()) return Bad(name, "arrays of this element type are not an eFTL field type");
    if (first.is_bool()) {
      f->type = FieldType::kStringArray;
      for (const auto& e : a) {
        if (!e.is_bool()) return mixed();
        f->texts.emplace_back(e.get_bool() ? "true" : "false");
      }
      return Status::Ok();
    }
    *keep = false;
    return Status::Ok();
  }

  DecodeMode mode_;
};

}  // namespace

Result<Message> DecodeMessage(const json::value& value, DecodeMode mode) {
  if (!value.is_object()) return InvalidArgument("a message must be a JSON object");
  Message m;
  Decoder d(mode);
  if (Status s = d.DecodeObject(value.get_object(), 0, &m); !s.ok()) return s;
  return m;
}

namespace {

// Builds a json::value like json::parse, except that doubles are converted with std::from_chars
// (correctly rounded): Boost.JSON 1.81's own conversion can be one unit in the last place off,
// and a double must read back exactly as it was written.
struct ExactHandler {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  using ec_t = boost::system::error_code;

  json::value_stack st;
  std::string number;  // the parts of a number split across input buffers

  bool on_document_begin(ec_t&) { return true; }
  bool on_document_end(ec_t&) { return true; }
  bool on_object_begin(ec_t&) { return true; }
  bool on_object_end(std::size_t n, ec_t&) {
    st.push_object(n);
    return true;
  }
  bool on_array_begin(ec_t&) { return true; }
  bool on_array_end(std::size_t n, ec_t&) {
    st.push_array(n);
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, ec_t&) {
    st.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, ec_t&) {
    st.push_key(s);
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, ec_t&) {
    st.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, ec_t&) {
    st.push_string(s);
    return true;
  }
  bool on_number_part(json::string_view s, ec_t&) {
    number.append(s.data(), s.size());
    return true;
  }
  bool on_int64(int64_t v, json::string_view, ec_t&) {
    number.clear();
    st.push_int64(v);
    return true;
  }
  bool on_uint64(uint64_t v, json::string_view, ec_t&) {
    number.clear();
    st.push_uint64(v);
    return true;
  }
  bool on_double(double v, json::string_view s, ec_t&) {
    number.append(s.data(), s.size());
    double exact = 0;
    auto r = std::from_chars(number.data(), number.data() + number.size(), exact);
    if (r.ec == std::errc() && r.ptr == number.data() + number.size()) v = exact;
    number.clear();
    st.push_double(v);
    return true;
  }
  bool on_bool(bool b, ec_t&) {
    st.push_bool(b);
    return true;
  }
  bool on_null(ec_t&) {
    st.push_null();
    return true;
  }
  bool on_comment_part(json::string_view, ec_t&) { return true; }
  bool on_comment(json::string_view, ec_t&) { return true; }
};

}  // namespace

Result<json::value> ParseJson(std::string_view text, int max_depth) {
  json::parse_options opts;
  opts.max_depth = static_cast<std::size_t>(max_depth);
  json::basic_parser<ExactHandler> parser(opts);
  parser.handler().st.reset();
  boost::system::error_code ec;
  const std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  if (!ec && used < text.size()) ec = json::error::extra_data;
  if (ec) return InvalidArgument(ec.message());
  return parser.handler().st.release();
}

Result<Message> ParseMessage(std::string_view text, DecodeMode mode) {
  // Arrays and wrappers add levels; DecodeObject applies kMaxDepth itself.
  auto v = ParseJson(text, 2 * kMaxDepth + 4);
  if (!v.ok()) return InvalidArgument("message is not valid JSON: " + v.status().message());
  return DecodeMessage(*v, mode);
}

// ---- encoding ------------------------------------------------------------------------------

void AppendDouble(std::string& out, double v) {
  if (v == 0 && std::signbit(v)) {
    out += "-0.0";  // "-0" would read back as the integer 0
    return;
  }
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);  // shortest form that reads back exactly
  out.append(buf, r.ptr);
}

namespace {

void AppendTypedDouble(std::string& out, double v) {
  out += R"({"_d_":)";
  if (std::isnan(v)) out += R"("NaN")";
  else if (std::isinf(v)) out += v > 0 ? R"("Infinity")" : R"("-Infinity")";
  else AppendDouble(out, v);
  out.push_back('}');
}

void AppendDateTime(std::string& out, int64_t ms) {
  out += R"({"_m_":)";
  out += std::to_string(ms);
  out.push_back('}');
}

void AppendField(std::string& out, const Field& f) {
  auto list = [&out](const auto& items, auto&& each) {
    out.push_back('[');
    bool first = true;
    for (const auto& item : items) {
      if (!first) out.push_back(',');
      first = false;
      each(item);
    }
    out.push_back(']');
  };
  switch (f.type) {
    case FieldType::kString: AppendJsonString(out, f.text); break;
    case FieldType::kLong: out += std::to_string(f.number); break;
    case FieldType::kDouble: AppendTypedDouble(out, f.real); break;
    case FieldType::kDateTime: AppendDateTime(out, f.number); break;
    case FieldType::kOpaque:
      out += R"({"_o_":)";
      AppendJsonString(out, Base64Encode(f.text));
      out.push_back('}');
      break;
    case FieldType::kMessage:
      if (f.messages.empty()) out += "{}";
      else AppendMessage(out, f.messages.front());
      break;
    case FieldType::kStringArray: list(f.texts, [&](const std::string& s) { AppendJsonString(out, s); }); break;
    case FieldType::kLongArray: list(f.numbers, [&](int64_t n) { out += std::to_string(n); }); break;
    case FieldType::kDoubleArray: list(f.reals, [&](double d) { AppendTypedDouble(out, d); }); break;
    case FieldType::kDateTimeArray: list(f.numbers, [&](int64_t n) { AppendDateTime(out, n); }); break;
    case FieldType::kMessageArray: list(f.messages, [&](const Message& m) { AppendMessage(out, m); }); break;
    case FieldType::kEmptyArray: out += "[]"; break;
  }
}

}  // namespace

void AppendMessage(std::string& out, const Message& message) {
  out.push_back('{');
  bool first = true;
  for (const auto& [name, field] : message.fields) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(out, name);
    out.push_back(':');
    AppendField(out, field);
  }
  out.push_back('}');
}

std::string EncodeMessage(const Message& message) {
  std::string out;
  AppendMessage(out, message);
  return out;
}

// ---- base64 --------------------------------------------------------------------------------

bool Base64Decode(std::string_view text, std::string* out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 == 0 && !text.empty()) {
    if (text.back() == '=') text.remove_suffix(1);
    if (!text.empty() && text.back() == '=') text.remove_suffix(1);
  }
  if (text.size() % 4 == 1) return false;
  out->clear();
  out->reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int v = value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits must be zero (canonical encoding), else the text was not base64 of anything.
  return (acc & ((1u << bits) - 1)) == 0;
}

}  // namespace magnetar::eftl
