#include "relay/validation.h"

#include "auth/user.h"
#include "core/topic_name.h"

namespace magnetar::relay {

json::array Loc(json::array loc, json::value element) {
  loc.push_back(std::move(element));
  return loc;
}

namespace {

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

std::optional<std::string> StringField(const json::object& obj, std::string_view key,
                                       json::array loc, ValidationErrors& errors, bool required,
                                       size_t min_len, size_t max_len) {
  auto field_loc = Loc(std::move(loc), json::string(key));
  const json::value* v = obj.if_contains(key);
  if (!v || (v->is_null() && !required)) {
    if (required) errors.Missing(std::move(field_loc), json::value(obj));
    return std::nullopt;
  }
  if (!v->is_string()) {
    errors.Add("string_type", std::move(field_loc), "Input should be a valid string", *v);
    return std::nullopt;
  }
  std::string s(v->get_string());
  const size_t len = Utf8Length(s);
  if (min_len && len < min_len) {
    json::object ctx;
    ctx["min_length"] = min_len;
    errors.Add("string_too_short", std::move(field_loc),
               "String should have at least " + std::to_string(min_len) +
                   (min_len == 1 ? " character" : " characters"),
               *v, std::move(ctx));
    return std::nullopt;
  }
  if (max_len && len > max_len) {
    json::object ctx;
    ctx["max_length"] = max_len;
    errors.Add("string_too_long", std::move(field_loc),
               "String should have at most " + std::to_string(max_len) + " characters", *v,
               std::move(ctx));
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> TopicNameValue(const json::value& v, json::array loc,
                                          ValidationErrors& errors) {
  if (!v.is_string()) {
    errors.Add("string_type", std::move(loc), "Input should be a valid string", v);
    return std::nullopt;
  }
  std::string name(v.get_string());
  if (auto problem = core::ValidateTopicName(name)) {
    json::object ctx;
    ctx["error"] = *problem;
    errors.Add("value_error", std::move(loc), "Value error, " + *problem, v, std::move(ctx));
    return std::nullopt;
  }
  return name;
}

const json::object* BodyObject(const json::value& body, ValidationErrors& errors) {
  if (body.is_object()) return &body.get_object();
  errors.Add("model_attributes_type", json::array{"body"},
             "Input should be a valid dictionary or object to extract fields from", body);
  return nullptr;
}

// pydantic's lax bool: true/false, 0/1 (also as floats) and the usual strings.
std::optional<bool> LaxBool(const json::value& v, json::array loc, ValidationErrors& errors) {
  if (v.is_bool()) return v.get_bool();
  if (v.is_int64() || v.is_uint64() || v.is_double()) {
    const double d = v.is_int64()    ? static_cast<double>(v.get_int64())
                     : v.is_uint64() ? static_cast<double>(v.get_uint64())
                                     : v.get_double();
    if (d == 0 || d == 1) return d == 1;
  } else if (v.is_string()) {
    std::string s(v.get_string());
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const char* yes : {"1", "on", "t", "true", "y", "yes"}) {
      if (s == yes) return true;
    }
    for (const char* no : {"0", "off", "f", "false", "n", "no"}) {
      if (s == no) return false;
    }
  } else {
    errors.Add("bool_type", std::move(loc), "Input should be a valid boolean", v);
    return std::nullopt;
  }
  errors.Add("bool_parsing", std::move(loc),
             "Input should be a valid boolean, unable to interpret input", v);
  return std::nullopt;
}

// list["admin" | "read" | "write"], duplicates allowed (§1.4).
std::optional<std::vector<std::string>> PermissionList(const json::value& v,
                                                       ValidationErrors& errors) {
  if (!v.is_array()) {
    errors.Add("list_type", json::array{"body", "permissions"}, "Input should be a valid list", v);
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  const auto& arr = v.get_array();
  for (size_t i = 0; i < arr.size(); ++i) {
    if (!arr[i].is_string() || !auth::ParsePermission(arr[i].get_string())) {
      json::object c;
      c["expected"] = "'admin', 'read' or 'write'";
      errors.Add("enum", json::array{"body", "permissions", i},
                 "Input should be 'admin', 'read' or 'write'", arr[i], std::move(c));
      ok = false;
    } else {
      out.emplace_back(arr[i].get_string());
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

}  // namespace magnetar::relay
