// The relay request models: `Message` (spec §2.1, D1, D2), the bulk wrapper's items, and
// `PollRequest` (spec §3.1, D5).

#include "relay/message_model.h"

#include <gtest/gtest.h>

#include "relay/poll_model.h"

namespace magnetar::relay {
namespace {

json::value J(std::string_view text) {
  auto v = ParseJson(text);
  EXPECT_TRUE(v.has_value()) << text;
  return v ? *v : json::value();
}

struct Parsed {
  std::optional<MessageRequest> request;
  json::array detail;  // the 422 "detail" list
};

Parsed Parse(std::string_view body, json::array loc = json::array{"body"}) {
  ValidationErrors errors;
  auto request = ParseMessageRequest(J(body), [&loc] { return loc; }, errors);
  EXPECT_EQ(request.has_value(), errors.empty()) << body;
  Parsed out{std::move(request), {}};
  if (!errors.empty()) {
    const http::Response r = errors.ToResponse();
    EXPECT_EQ(r.status, 422u);
    out.detail = J(r.body).at("detail").as_array();
  }
  return out;
}

// The single error of a refused body.
json::object OnlyError(const Parsed& p) {
  EXPECT_FALSE(p.request.has_value());
  EXPECT_EQ(p.detail.size(), 1u);
  return p.detail.empty() ? json::object() : p.detail[0].as_object();
}

TEST(ParseMessageRequestTest, Valid) {
  Parsed p = Parse(R"({"topic":"jobs.v1_x-y","payload":{"b": [1, {"c": null}], "a": "é"},)"
                   R"("ttl":60,"metadata":{"z":"1","a":"2"},"unknown":"ignored"})");
  ASSERT_TRUE(p.request.has_value());
  EXPECT_EQ(p.request->topic, "jobs.v1_x-y");
  EXPECT_EQ(p.request->payload_json, R"({"b":[1,{"c":null}],"a":"é"})");
  EXPECT_EQ(p.request->ttl_seconds, 60);
  EXPECT_EQ(p.request->metadata,
            (std::vector<std::pair<std::string, std::string>>{{"z", "1"}, {"a", "2"}}));
}

TEST(ParseMessageRequestTest, OptionalFieldsMayBeNullOrAbsent) {
  Parsed p = Parse(R"({"topic":"t","payload":{},"ttl":null,"metadata":null})");
  ASSERT_TRUE(p.request.has_value());
  EXPECT_FALSE(p.request->ttl_seconds.has_value());
  EXPECT_TRUE(p.request->metadata.empty());
  EXPECT_EQ(p.request->payload_json, "{}");
  EXPECT_TRUE(Parse(R"({"topic":"t","payload":{}})").request.has_value());
}

TEST(ParseMessageRequestTest, MissingFields) {
  Parsed p = Parse(R"({"ttl":5})");
  ASSERT_EQ(p.detail.size(), 2u);
  EXPECT_EQ(p.detail[0].at("type"), "missing");
  EXPECT_EQ(p.detail[0].at("loc"), (json::array{"body", "topic"}));
  EXPECT_EQ(p.detail[0].at("msg"), "Field required");
  EXPECT_EQ(p.detail[0].at("input"), J(R"({"ttl":5})"));  // the whole object, as pydantic
  EXPECT_EQ(p.detail[1].at("type"), "missing");
  EXPECT_EQ(p.detail[1].at("loc"), (json::array{"body", "payload"}));

  json::object e = OnlyError(Parse(R"({"payload":{}})"));
  EXPECT_EQ(e.at("type"), "missing");
  EXPECT_EQ(e.at("loc"), (json::array{"body", "topic"}));
}

TEST(ParseMessageRequestTest, BodyMustBeAnObject) {
  json::object e = OnlyError(Parse("[1]"));
  EXPECT_EQ(e.at("type"), "model_attributes_type");
  EXPECT_EQ(e.at("loc"), (json::array{"body"}));
  EXPECT_EQ(e.at("input"), (json::array{1}));
}

TEST(ParseMessageRequestTest, PayloadMustBeAnObject) {
  for (std::string_view payload : {"[1,2]", R"("text")", "3", "true"}) {
    json::object e =
        OnlyError(Parse(std::string(R"({"topic":"t","payload":)") + std::string(payload) + "}"));
    EXPECT_EQ(e.at("type"), "dict_type") << payload;
    EXPECT_EQ(e.at("loc"), (json::array{"body", "payload"}));
    EXPECT_EQ(e.at("msg"), "Input should be a valid dictionary");
    EXPECT_EQ(e.at("input"), J(payload));
  }
  // null is not "absent": the payload is required and must be an object.
  EXPECT_EQ(OnlyError(Parse(R"({"topic":"t","payload":null})")).at("type"), "dict_type");
}

TEST(ParseMessageRequestTest, TtlMustBePositive) {
  for (std::string_view ttl : {"0", "-1"}) {
    json::object e =
        OnlyError(Parse(std::string(R"({"topic":"t","payload":{},"ttl":)") + std::string(ttl) + "}"));
    EXPECT_EQ(e.at("type"), "greater_than");
    EXPECT_EQ(e.at("loc"), (json::array{"body", "ttl"}));
    EXPECT_EQ(e.at("msg"), "Input should be greater than 0");
    EXPECT_EQ(e.at("input"), J(ttl));
    EXPECT_EQ(e.at("ctx"), (json::object{{"gt", 0}}));
  }
}

TEST(ParseMessageRequestTest, TtlIsALaxInteger) {
  Parsed p = Parse(R"({"topic":"t","payload":{},"ttl":"5"})");
  ASSERT_TRUE(p.request.has_value());
  EXPECT_EQ(p.request->ttl_seconds, 5);
  p = Parse(R"({"topic":"t","payload":{},"ttl":30.0})");
  ASSERT_TRUE(p.request.has_value());
  EXPECT_EQ(p.request->ttl_seconds, 30);

  json::object e = OnlyError(Parse(R"({"topic":"t","payload":{},"ttl":1.5})"));
  EXPECT_EQ(e.at("type"), "int_from_float");
  EXPECT_EQ(e.at("loc"), (json::array{"body", "ttl"}));
  EXPECT_EQ(OnlyError(Parse(R"({"topic":"t","payload":{},"ttl":"soon"})")).at("type"),
            "int_parsing");
  EXPECT_EQ(OnlyError(Parse(R"({"topic":"t","payload":{},"ttl":[]})")).at("type"), "int_type");
}

TEST(ParseMessageRequestTest, HugeTtlIsClamped) {
  // (An integer literal beyond uint64 reaches the validator as a double, as if written 1e20.)
  Parsed p = Parse(R"({"topic":"t","payload":{},"ttl":18446744073709551615})");
  ASSERT_TRUE(p.request.has_value());
  ASSERT_TRUE(p.request->ttl_seconds.has_value());
  // Bounded so that now + ttl cannot overflow.
  EXPECT_LE(*p.request->ttl_seconds, int64_t{9'000'000'000});
  auto draft = std::move(*p.request).ToDraft(1'700'000'000'000'000);
  EXPECT_GT(draft->expires_at, 1'700'000'000'000'000);
  p = Parse(R"({"topic":"t","payload":{},"ttl":"99999999999999999999999"})");
  ASSERT_TRUE(p.request.has_value());
  EXPECT_EQ(p.request->ttl_seconds, int64_t{9'000'000'000});
  p = Parse(R"({"topic":"t","payload":{},"ttl":1e16})");
  ASSERT_TRUE(p.request.has_value());
  EXPECT_EQ(p.request->ttl_seconds, int64_t{9'000'000'000});
}

TEST(ParseMessageRequestTest, MetadataValuesMustBeStrings) {
  json::object e = OnlyError(Parse(R"({"topic":"t","payload":{},"metadata":{"a":"x","n":1}})"));
  EXPECT_EQ(e.at("type"), "string_type");
  EXPECT_EQ(e.at("loc"), (json::array{"body", "metadata", "n"}));
  EXPECT_EQ(e.at("msg"), "Input should be a valid string");
  EXPECT_EQ(e.at("input"), 1);

  Parsed p = Parse(R"({"topic":"t","payload":{},"metadata":{"a":null,"b":{}}})");
  ASSERT_EQ(p.detail.size(), 2u);
  EXPECT_EQ(p.detail[0].at("loc"), (json::array{"body", "metadata", "a"}));
  EXPECT_EQ(p.detail[1].at("loc"), (json::array{"body", "metadata", "b"}));

  e = OnlyError(Parse(R"({"topic":"t","payload":{},"metadata":["a"]})"));
  EXPECT_EQ(e.at("type"), "dict_type");
  EXPECT_EQ(e.at("loc"), (json::array{"body", "metadata"}));
}

TEST(ParseMessageRequestTest, BadTopicNamesAreValueErrors) {
  const std::string long_name(256, 'a');
  const std::pair<std::string, std::string> cases[] = {
      {"café", "Topic must contain only alphanumeric characters, hyphens, and underscores"},
      {"---", "Topic must contain only alphanumeric characters, hyphens, and underscores"},
      {"a b", "Topic must contain only alphanumeric characters, hyphens, and underscores"},
      {"a/b", "Topic must contain only alphanumeric characters, hyphens, and underscores"},
      {"", "Topic name must not be empty"},
      {long_name, "Topic name must be at most 255 characters"},
  };
  for (const auto& [name, problem] : cases) {
    json::object body{{"topic", name}, {"payload", json::object{}}};
    json::object e = OnlyError(Parse(json::serialize(body)));
    EXPECT_EQ(e.at("type"), "value_error") << name;
    EXPECT_EQ(e.at("loc"), (json::array{"body", "topic"}));
    EXPECT_EQ(e.at("msg"), json::value("Value error, " + problem)) << name;
    EXPECT_EQ(e.at("input"), json::value(name));
    EXPECT_EQ(e.at("ctx"), (json::object{{"error", problem}}));
  }
  EXPECT_TRUE(Parse(R"({"topic":")" + std::string(255, 'a') + R"(","payload":{}})").request);
  EXPECT_EQ(OnlyError(Parse(R"({"topic":5,"payload":{}})")).at("type"), "string_type");
}

TEST(ParseMessageRequestTest, BulkItemLocations) {
  // The bulk route validates each item at ["body","messages",i].
  Parsed p = Parse(R"({"topic":"t","payload":[]})", json::array{"body", "messages", 3});
  ASSERT_EQ(p.detail.size(), 1u);
  EXPECT_EQ(p.detail[0].at("loc"), (json::array{"body", "messages", 3, "payload"}));
  p = Parse("7", json::array{"body", "messages", 0});
  ASSERT_EQ(p.detail.size(), 1u);
  EXPECT_EQ(p.detail[0].at("type"), "model_attributes_type");
  EXPECT_EQ(p.detail[0].at("loc"), (json::array{"body", "messages", 0}));
}

TEST(MessageRequestTest, ToDraft) {
  Parsed p = Parse(R"({"topic":"jobs","payload":{ "x" : 1, "y" : [true] },"ttl":90,)"
                   R"("metadata":{"k2":"v2","k1":"v1"}})");
  ASSERT_TRUE(p.request.has_value());
  const UnixMicros now = 1'700'000'000'000'000;
  core::DraftPtr d = std::move(*p.request).ToDraft(now);
  EXPECT_EQ(d->topic, "jobs");
  EXPECT_EQ(d->payload, R"({"x":1,"y":[true]})");
  EXPECT_EQ(d->format, core::PayloadFormat::kJson);
  EXPECT_EQ(d->expires_at, now + 90 * 1'000'000);
  EXPECT_EQ(d->properties,
            (std::vector<std::pair<std::string, std::string>>{{"k2", "v2"}, {"k1", "v1"}}));
  EXPECT_EQ(d->id, MessageId{});  // the store assigns it

  p = Parse(R"({"topic":"jobs","payload":{}})");
  ASSERT_TRUE(p.request.has_value());
  EXPECT_EQ(std::move(*p.request).ToDraft(now)->expires_at, 0);  // never
}

// ---------------------------------------------------------------------------------------------
// PollRequest

struct PollParsed {
  std::optional<PollRequest> request;
  json::array detail;
};

PollParsed Poll(std::string_view body) {
  ValidationErrors errors;
  auto request = ParsePollRequest(J(body), errors);
  EXPECT_EQ(request.has_value(), errors.empty()) << body;
  PollParsed out{std::move(request), {}};
  if (!errors.empty()) out.detail = J(errors.ToResponse().body).at("detail").as_array();
  return out;
}

TEST(ParsePollRequestTest, ValidWithDefaults) {
  PollParsed p = Poll(R"({"topics":["a","b"]})");
  ASSERT_TRUE(p.request.has_value());
  EXPECT_EQ(p.request->topics, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(p.request->since.empty());
  EXPECT_EQ(p.request->timeout, 30);

  p = Poll(R"({"topics":["a"],"since":{"a":"12-3","other":"0-0"},"timeout":"60"})");
  ASSERT_TRUE(p.request.has_value());
  EXPECT_EQ(p.request->since.at("a"), (MessageId{12, 3}));
  EXPECT_EQ(p.request->since.at("other"), MessageId::Min());
  EXPECT_EQ(p.request->timeout, 60);
  EXPECT_TRUE(Poll(R"({"topics":["a"],"since":null,"timeout":null})").request.has_value());
}

TEST(ParsePollRequestTest, TopicsCount) {
  PollParsed p = Poll(R"({"topics":[]})");
  ASSERT_EQ(p.detail.size(), 1u);
  EXPECT_EQ(p.detail[0].at("type"), "too_short");
  EXPECT_EQ(p.detail[0].at("msg"), "List should have at least 1 item after validation, not 0");
  std::string many;
  for (int i = 0; i < 21; ++i) many += (i ? ",\"t" : "\"t") + std::to_string(i) + "\"";
  p = Poll(R"({"topics":[)" + many + "]}");
  ASSERT_EQ(p.detail.size(), 1u);
  EXPECT_EQ(p.detail[0].at("type"), "too_long");
  EXPECT_EQ(p.detail[0].at("msg"), "List should have at most 20 items after validation, not 21");
  EXPECT_EQ(p.detail[0].at("ctx"),
            (json::object{{"field_type", "List"}, {"max_length", 20}, {"actual_length", 21}}));
  p = Poll(R"({"topics":"a"})");
  ASSERT_EQ(p.detail.size(), 1u);
  EXPECT_EQ(p.detail[0].at("type"), "list_type");
  p = Poll(R"({})");
  ASSERT_EQ(p.detail.size(), 1u);
  EXPECT_EQ(p.detail[0].at("type"), "missing");
  EXPECT_EQ(Poll("[]").detail[0].at("type"), "model_attributes_type");
}

TEST(ParsePollRequestTest, BadTopicAndCursorAndTimeout) {
  PollParsed p = Poll(R"({"topics":["ok","no good"],"since":{"ok":"abc","x":5},"timeout":0})");
  ASSERT_EQ(p.detail.size(), 4u);
  EXPECT_EQ(p.detail[0].at("type"), "value_error");
  EXPECT_EQ(p.detail[0].at("loc"), (json::array{"body", "topics", 1}));
  EXPECT_EQ(p.detail[1].at("type"), "value_error");  // D5: a malformed cursor is a 422
  EXPECT_EQ(p.detail[1].at("loc"), (json::array{"body", "since", "ok"}));
  EXPECT_EQ(p.detail[2].at("type"), "string_type");
  EXPECT_EQ(p.detail[2].at("loc"), (json::array{"body", "since", "x"}));
  EXPECT_EQ(p.detail[3].at("type"), "greater_than_equal");
  EXPECT_EQ(Poll(R"({"topics":["a"],"timeout":61})").detail[0].at("type"), "less_than_equal");
  EXPECT_EQ(Poll(R"({"topics":["a"],"timeout":1e300})").detail[0].at("type"), "int_parsing_size");
  EXPECT_EQ(Poll(R"({"topics":["a"],"timeout":18446744073709551615})").detail[0].at("type"),
            "less_than_equal");
  EXPECT_EQ(Poll(R"({"topics":["a"],"since":[]})").detail[0].at("type"), "dict_type");
}

}  // namespace
}  // namespace magnetar::relay
