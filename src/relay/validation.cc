#include "relay/validation.h"

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

}  // namespace magnetar::relay
