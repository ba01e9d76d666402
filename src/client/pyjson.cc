#include "client/pyjson.h"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <vector>

namespace magnetar::client::detail {
namespace {

void AppendHex4(std::string& out, unsigned v) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out.push_back(kHex[(v >> shift) & 0xF]);
}

// Decodes one UTF-8 sequence at s[i]; invalid bytes come out as U+FFFD, one byte consumed.
unsigned DecodeUtf8(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  int len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || i + len > s.size()) {
    ++i;
    return 0xFFFD;
  }
  unsigned cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  i += len;
  return cp;
}

void AppendString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      unsigned cp = DecodeUtf8(s, i);
      if (cp >= 0x10000) {
        cp -= 0x10000;
        AppendHex4(out, 0xD800 + (cp >> 10));
        AppendHex4(out, 0xDC00 + (cp & 0x3FF));
      } else {
        AppendHex4(out, cp);
      }
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          AppendHex4(out, c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

void Dump(std::string& out, const boost::json::value& v, std::optional<int> indent, bool sort,
          int depth) {
  auto newline = [&](int d) {
    out.push_back('\n');
    out.append(static_cast<size_t>(*indent * d), ' ');
  };
  switch (v.kind()) {
    case boost::json::kind::object: {
      const auto& obj = v.get_object();
      if (obj.empty()) {
        out += "{}";
        return;
      }
      std::vector<const boost::json::key_value_pair*> items;
      for (const auto& kv : obj) items.push_back(&kv);
      if (sort) {
        std::sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->key() < b->key(); });
      }
      out.push_back('{');
      bool first = true;
      for (const auto* kv : items) {
        if (!first) out += indent ? "," : ", ";
        first = false;
        if (indent) newline(depth + 1);
        AppendString(out, kv->key());
        out += ": ";
        Dump(out, kv->value(), indent, sort, depth + 1);
      }
      if (indent) newline(depth);
      out.push_back('}');
      return;
    }
    case boost::json::kind::array: {
      const auto& arr = v.get_array();
      if (arr.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      bool first = true;
      for (const auto& item : arr) {
        if (!first) out += indent ? "," : ", ";
        first = false;
        if (indent) newline(depth + 1);
        Dump(out, item, indent, sort, depth + 1);
      }
      if (indent) newline(depth);
      out.push_back(']');
      return;
    }
    case boost::json::kind::string:
      AppendString(out, v.get_string());
      return;
    case boost::json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      return;
    case boost::json::kind::null:
      out += "null";
      return;
    default:
      out += boost::json::serialize(v);  // numbers
  }
}

}  // namespace

std::string python_json_dumps(const boost::json::value& value, std::optional<int> indent,
                              bool sort_keys) {
  std::string out;
  Dump(out, value, indent, sort_keys, 0);
  return out;
}

}  // namespace magnetar::client::detail
