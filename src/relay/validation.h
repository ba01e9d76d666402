#pragma once

// Field validators with pydantic's error types and messages, shared by the relay models.

#include <optional>
#include <string>
#include <vector>

#include "relay/json_util.h"

namespace magnetar::relay {

// A required-or-optional string field with length bounds (0 = unbounded). Returns nullopt when
// absent/null (errors added if required) or invalid.
std::optional<std::string> StringField(const json::object& obj, std::string_view key,
                                       json::array loc, ValidationErrors& errors, bool required,
                                       size_t min_len = 0, size_t max_len = 0);

// A topic name (spec §0.4 + D1). Adds a value_error on failure.
std::optional<std::string> TopicNameValue(const json::value& v, json::array loc,
                                          ValidationErrors& errors);

// The body must be a JSON object: adds model_attributes_type and returns nullptr otherwise.
const json::object* BodyObject(const json::value& body, ValidationErrors& errors);

// pydantic's lax bool: true/false, 0/1 and the usual strings ("yes", "off", ...).
std::optional<bool> LaxBool(const json::value& v, json::array loc, ValidationErrors& errors);

// list["admin" | "read" | "write"] at ["body","permissions"], duplicates allowed (spec §1.4).
std::optional<std::vector<std::string>> PermissionList(const json::value& v,
                                                       ValidationErrors& errors);

// Appends a path element to a copy of `loc`.
json::array Loc(json::array loc, json::value element);

}  // namespace magnetar::relay
