#include "relay/poll_model.h"

#include "relay/validation.h"

namespace magnetar::relay {

namespace {

void AddLengthError(ValidationErrors& errors, json::array loc, size_t actual, size_t min,
                    size_t max, const json::value& input) {
  json::object c;
  c["field_type"] = "List";
  const bool too_short = actual < min;
  if (too_short) {
    c["min_length"] = min;
  } else {
    c["max_length"] = max;
  }
  c["actual_length"] = actual;
  errors.Add(too_short ? "too_short" : "too_long", std::move(loc),
             too_short ? "List should have at least " + std::to_string(min) +
                             " item after validation, not " + std::to_string(actual)
                       : "List should have at most " + std::to_string(max) +
                             " items after validation, not " + std::to_string(actual),
             input, std::move(c));
}

}  // namespace

std::optional<PollRequest> ParsePollRequest(const json::value& body, ValidationErrors& errors) {
  const json::object* obj = BodyObject(body, errors);
  if (!obj) return std::nullopt;
  PollRequest out;
  if (const json::value* topics = obj->if_contains("topics")) {
    if (!topics->is_array()) {
      errors.Add("list_type", json::array{"body", "topics"}, "Input should be a valid list",
                 *topics);
    } else if (topics->get_array().empty() || topics->get_array().size() > kMaxPollTopics) {
      AddLengthError(errors, json::array{"body", "topics"}, topics->get_array().size(), 1,
                     kMaxPollTopics, *topics);
    } else {
      const auto& arr = topics->get_array();
      for (size_t i = 0; i < arr.size(); ++i) {
        if (auto name = TopicNameValue(arr[i], json::array{"body", "topics", i}, errors)) {
          out.topics.push_back(std::move(*name));
        }
      }
    }
  } else {
    errors.Missing(json::array{"body", "topics"}, body);
  }
  if (const json::value* since = obj->if_contains("since"); since && !since->is_null()) {
    if (!since->is_object()) {
      errors.Add("dict_type", json::array{"body", "since"}, "Input should be a valid dictionary",
                 *since);
    } else {
      for (const auto& kv : since->get_object()) {
        json::array loc{"body", "since", json::string(kv.key())};
        if (!kv.value().is_string()) {
          errors.Add("string_type", std::move(loc), "Input should be a valid string", kv.value());
          continue;
        }
        auto id = MessageId::Parse(kv.value().get_string());
        if (!id) {
          // D5: a malformed cursor is the client's error, not a 500.
          json::object c;
          c["error"] = "cursor must be a message id \"<hi>-<lo>\"";
          errors.Add("value_error", std::move(loc),
                     "Value error, cursor must be a message id \"<hi>-<lo>\"", kv.value(),
                     std::move(c));
          continue;
        }
        out.since[std::string(kv.key())] = *id;
      }
    }
  }
  if (const json::value* timeout = obj->if_contains("timeout"); timeout && !timeout->is_null()) {
    if (auto t = ValidateInt(*timeout, json::array{"body", "timeout"}, errors)) {
      json::object c;
      if (*t < 1) {
        c["ge"] = 1;
        errors.Add("greater_than_equal", json::array{"body", "timeout"},
                   "Input should be greater than or equal to 1", *timeout, std::move(c));
      } else if (*t > 60) {
        c["le"] = 60;
        errors.Add("less_than_equal", json::array{"body", "timeout"},
                   "Input should be less than or equal to 60", *timeout, std::move(c));
      } else {
        out.timeout = *t;
      }
    }
  }
  if (!errors.empty()) return std::nullopt;
  return out;
}

}  // namespace magnetar::relay
