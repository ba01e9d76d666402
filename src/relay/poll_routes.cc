// POST /messages/poll and GET /messages/poll/stats (spec §3, §1.27; corrections D5, D9, D14).

#include "relay/json_util.h"
#include "relay/poll_manager.h"
#include "relay/relay_api.h"
#include "relay/request_auth.h"
#include "relay/validation.h"

namespace magnetar::relay {

namespace {

constexpr size_t kMaxPollTopics = 20;

struct PollRequest {
  std::vector<std::string> topics;
  std::map<std::string, MessageId> since;
  int64_t timeout = 30;
};

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

}  // namespace

void RelayApi::RegisterPoll(http::HttpService& service) {
  service.router().Add(
      http::Verb::post, "/messages/poll",
      [this](const http::RequestContextPtr& ctx, http::Responder respond) {
        std::string parse_error;
        auto body = ParseJson(ctx->request.body(), &parse_error);
        if (!body) return respond(JsonInvalidResponse(parse_error));
        auto outcome = AuthenticateRequest(deps_.authenticator, *ctx, auth::Permission::kRead);
        if (auto* refusal = std::get_if<http::Response>(&outcome)) {
          return respond(std::move(*refusal));
        }
        const auto& user = std::get<auth::AuthContext>(outcome).user;
        ValidationErrors errors;
        auto request = ParsePollRequest(*body, errors);
        if (!request) return respond(errors.ToResponse());

        std::vector<core::TopicKey> keys;
        for (const auto& name : request->topics) keys.push_back({user.user_id, name});
        const bool catch_up = !request->since.empty();
        auto waiter = std::make_shared<PollWaiter>(
            *polls_, ctx->executor, user.user_id, std::move(keys), std::move(request->since),
            catch_up, std::chrono::seconds(request->timeout), respond);
        if (!polls_->Add(waiter)) {
          // D13: a 429 says when to come back.
          return respond(Detail(429, "Too many concurrent poll connections")
                             .WithHeader("Retry-After", "1"));
        }
        // D14: a client that goes away is noticed; its waiter goes (it held no messages).
        ctx->on_client_gone = [weak = std::weak_ptr<PollWaiter>(waiter)] {
          if (auto w = weak.lock()) w->AnswerNow();
        };
        waiter->Start();
      });

  service.router().Add(http::Verb::get, "/messages/poll/stats",
                       [this](const http::RequestContextPtr& ctx, http::Responder respond) {
                         auto outcome =
                             AuthenticateRequest(deps_.authenticator, *ctx, std::nullopt);
                         if (auto* refusal = std::get_if<http::Response>(&outcome)) {
                           return respond(std::move(*refusal));
                         }
                         const auto& user = std::get<auth::AuthContext>(outcome).user;
                         respond(http::Response::Json(200, polls_->StatsJson(user)));
                       });
}

}  // namespace magnetar::relay
