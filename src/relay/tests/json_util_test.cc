#include "relay/json_util.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace magnetar::relay {
namespace {

std::string Nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

const std::string* HeaderValue(const http::Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// ParseJson

TEST(ParseJsonTest, ParsesValidJson) {
  auto v = ParseJson(R"({"topic":"jobs","payload":{"n":[1,2.5,"x",null,true]}})");
  ASSERT_TRUE(v.has_value());
  ASSERT_TRUE(v->is_object());
  EXPECT_EQ(v->at("topic").as_string(), "jobs");
  EXPECT_EQ(v->at("payload").at("n").as_array().size(), 5u);
  // Scalars are valid bodies too (the models reject them, not the parser).
  EXPECT_TRUE(ParseJson("42").has_value());
  EXPECT_TRUE(ParseJson(R"("s")").has_value());
  EXPECT_TRUE(ParseJson("  {}  ").has_value());
}

TEST(ParseJsonTest, RefusesInvalidJsonWithAMessage) {
  for (std::string_view bad : {"", "{", "{\"a\":}", "{'a':1}", "[1,]", "{} {}", "nul", "\"\\ud800\"",
                               "{\"a\":1,}", "\xff"}) {
    std::string error;
    EXPECT_FALSE(ParseJson(bad, &error).has_value()) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
  // The error pointer is optional.
  EXPECT_FALSE(ParseJson("{").has_value());
}

TEST(ParseJsonTest, DepthIsBoundedAt64) {
  EXPECT_TRUE(ParseJson(Nested(kMaxJsonDepth)).has_value());
  std::string error;
  EXPECT_FALSE(ParseJson(Nested(kMaxJsonDepth + 1), &error).has_value());
  EXPECT_FALSE(error.empty());
  // Far deeper input is refused without exhausting the stack.
  EXPECT_FALSE(ParseJson(Nested(100000)).has_value());
  std::string objects;
  for (int i = 0; i < 65; ++i) objects += R"({"a":)";
  objects += "1" + std::string(65, '}');
  EXPECT_FALSE(ParseJson(objects).has_value());
}

TEST(ParseJsonTest, RefusesNumbersOutOfDoubleRange) {
  // Boost.JSON reads these as infinity, which would be re-serialised as `Infinity` (not JSON).
  std::string error;
  EXPECT_FALSE(ParseJson(R"({"payload":{"x":1e400}})", &error).has_value());
  EXPECT_EQ(error, "number out of range");
  EXPECT_FALSE(ParseJson("[-1e400]").has_value());
  EXPECT_FALSE(ParseJson("1" + std::string(400, '0')).has_value());
  EXPECT_TRUE(ParseJson("[1e300, -1e-400, 18446744073709551616]").has_value());
}

TEST(ParseJsonTest, DuplicateKeysKeepTheLastValue) {
  auto v = ParseJson(R"({"a":1,"a":2})");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->as_object().size(), 1u);
  EXPECT_EQ(v->at("a").as_int64(), 2);
}

// ---------------------------------------------------------------------------------------------
// ValidationErrors and error responses

TEST(ValidationErrorsTest, RendersFastApiShape) {
  ValidationErrors errors;
  EXPECT_TRUE(errors.empty());
  json::object input{{"payload", json::object{}}};
  errors.Missing(json::array{"body", "topic"}, input);
  json::object ctx{{"gt", 0}};
  errors.Add("greater_than", json::array{"body", "ttl"}, "Input should be greater than 0",
             json::value(0), std::move(ctx));
  EXPECT_FALSE(errors.empty());

  const http::Response r = errors.ToResponse();
  EXPECT_EQ(r.status, 422u);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body,
            R"({"detail":[)"
            R"({"type":"missing","loc":["body","topic"],"msg":"Field required","input":{"payload":{}}},)"
            R"({"type":"greater_than","loc":["body","ttl"],"msg":"Input should be greater than 0",)"
            R"("input":0,"ctx":{"gt":0}}]})");
}

TEST(ValidationErrorsTest, KeyOrderIsTypeLocMsgInputCtx) {
  ValidationErrors errors;
  errors.WrongType("string_type", "Input should be a valid string",
                   json::array{"body", "messages", 3, "topic"}, json::value(7));
  const std::string body = errors.ToResponse().body;
  EXPECT_EQ(body,
            R"({"detail":[{"type":"string_type","loc":["body","messages",3,"topic"],)"
            R"("msg":"Input should be a valid string","input":7}]})");
  const auto type = body.find("\"type\""), loc = body.find("\"loc\""), msg = body.find("\"msg\""),
             input = body.find("\"input\"");
  EXPECT_LT(type, loc);
  EXPECT_LT(loc, msg);
  EXPECT_LT(msg, input);
}

TEST(ValidationErrorsTest, SecretsAreNeverEchoed) {
  ValidationErrors errors;
  // An error at a secret field: its value is replaced, whatever its type.
  errors.Add("string_too_short", json::array{"body", "password"}, "too short",
             json::value("hunter2"));
  errors.Add("string_type", json::array{"body", "refresh_token"}, "not a string",
             json::array{"jti.secret"});
  // A missing field echoes the body: secret fields in it (at any depth) are replaced.
  errors.Missing(json::array{"body", "username"},
                 json::object{{"password", "correct horse"},
                              {"nested", json::object{{"device_code", "dc-123"}}},
                              {"Refresh_Tokens", "misspelt.field"},
                              {"email", "a@example.org"}});
  // A null stays null (there is nothing to hide), and other fields are echoed as they are.
  errors.Add("string_type", json::array{"body", "password"}, "null", json::value(nullptr));
  errors.Add("string_type", json::array{"body", "email"}, "number", json::value(5));
  const std::string body = errors.ToResponse().body;
  for (const char* secret :
       {"hunter2", "jti.secret", "correct horse", "dc-123", "misspelt.field"}) {
    EXPECT_EQ(body.find(secret), std::string::npos) << secret << " in " << body;
  }
  EXPECT_NE(body.find(R"("msg":"too short","input":"**********")"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("msg":"not a string","input":"**********")"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("input":{"password":"**********","nested":{"device_code":"**********"},)"
                      R"("Refresh_Tokens":"**********","email":"a@example.org"})"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find(R"("msg":"null","input":null)"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("msg":"number","input":5)"), std::string::npos) << body;
}

TEST(ValidationErrorsTest, EmptyErrorsRenderAnEmptyList) {
  ValidationErrors errors;
  const http::Response r = errors.ToResponse();
  EXPECT_EQ(r.status, 422u);
  EXPECT_EQ(r.body, R"({"detail":[]})");
}

TEST(JsonInvalidResponseTest, IsFastApiJsonInvalid) {
  const http::Response r = JsonInvalidResponse("Expecting value");
  EXPECT_EQ(r.status, 422u);
  EXPECT_EQ(r.body,
            R"({"detail":[{"type":"json_invalid","loc":["body",0],"msg":"JSON decode error",)"
            R"("input":{},"ctx":{"error":"Expecting value"}}]})");
}

TEST(JsonInvalidResponseTest, ErrorTextIsEscaped) {
  const http::Response r = JsonInvalidResponse("bad \"quote\"\n");
  ASSERT_TRUE(ParseJson(r.body).has_value()) << r.body;
  EXPECT_EQ(ParseJson(r.body)->at("detail").at(0).at("ctx").at("error").as_string(),
            "bad \"quote\"\n");
}

TEST(DetailTest, StringDetailWithStatus) {
  const http::Response r = Detail(404, "Topic 'a\"b' not found");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, R"({"detail":"Topic 'a\"b' not found"})");
  EXPECT_TRUE(r.headers.empty());
}

TEST(DetailTest, UnauthorizedCarriesBearerChallenge) {
  const http::Response r = Unauthorized("Not authenticated");
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.body, R"({"detail":"Not authenticated"})");
  const std::string* challenge = HeaderValue(r, "WWW-Authenticate");
  ASSERT_NE(challenge, nullptr);
  EXPECT_EQ(*challenge, "Bearer");
  EXPECT_EQ(r.headers.size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// AppendJsonString

std::string Quoted(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

// The escaping rule itself is tested in common/tests/json_string_test.cc; here, that the relay's
// parser reads back everything it writes.

TEST(RelayJsonStringTest, ParserReadsBackWhatAppendJsonStringWrites) {
  std::string out = "x=";
  AppendJsonString(out, "v");
  EXPECT_EQ(out, R"(x="v")");
  std::string all;
  for (int c = 1; c < 128; ++c) all.push_back(static_cast<char>(c));
  all += "é";
  auto parsed = ParseJson(Quoted(all));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->as_string(), all);
}

// ---------------------------------------------------------------------------------------------
// ParseForm

using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(ParseFormTest, DecodesPairsInOrder) {
  EXPECT_EQ(ParseForm("username=alice&password=s3cret"),
            (Pairs{{"username", "alice"}, {"password", "s3cret"}}));
  EXPECT_EQ(ParseForm("b=2&a=1&b=3"), (Pairs{{"b", "2"}, {"a", "1"}, {"b", "3"}}));
  EXPECT_TRUE(ParseForm("").empty());
}

TEST(ParseFormTest, PlusIsSpaceAndPercentDecodes) {
  EXPECT_EQ(ParseForm("name=John+Smith"), (Pairs{{"name", "John Smith"}}));
  EXPECT_EQ(ParseForm("p=a%2Bb%3D%26%25"), (Pairs{{"p", "a+b=&%"}}));
  EXPECT_EQ(ParseForm("p=%c3%a9%C3%A9"), (Pairs{{"p", "éé"}}));
  EXPECT_EQ(ParseForm("k%20ey=v"), (Pairs{{"k ey", "v"}}));
  // An encoded '+' stays a plus; an encoded space is a space.
  EXPECT_EQ(ParseForm("a=%2B+%20"), (Pairs{{"a", "+  "}}));
}

TEST(ParseFormTest, MalformedPercentIsKeptAsIs) {
  EXPECT_EQ(ParseForm("a=100%"), (Pairs{{"a", "100%"}}));
  EXPECT_EQ(ParseForm("a=%4"), (Pairs{{"a", "%4"}}));
  EXPECT_EQ(ParseForm("a=%zz"), (Pairs{{"a", "%zz"}}));
  EXPECT_EQ(ParseForm("a=%%41"), (Pairs{{"a", "%A"}}));
  EXPECT_EQ(ParseForm("a=%41"), (Pairs{{"a", "A"}}));
  EXPECT_EQ(ParseForm("a=x%41"), (Pairs{{"a", "xA"}}));
}

TEST(ParseFormTest, EmptyPairsAreSkipped) {
  EXPECT_EQ(ParseForm("&&a=1&&b=2&"), (Pairs{{"a", "1"}, {"b", "2"}}));
  EXPECT_TRUE(ParseForm("&").empty());
  // Empty values and empty keys are kept.
  EXPECT_EQ(ParseForm("a=&=b"), (Pairs{{"a", ""}, {"", "b"}}));
}

TEST(ParseFormTest, KeyWithoutEquals) {
  EXPECT_EQ(ParseForm("flag"), (Pairs{{"flag", ""}}));
  EXPECT_EQ(ParseForm("flag&a=1"), (Pairs{{"flag", ""}, {"a", "1"}}));
  // Only the first '=' splits.
  EXPECT_EQ(ParseForm("a=b=c"), (Pairs{{"a", "b=c"}}));
}

// ---------------------------------------------------------------------------------------------
// ValidateInt

struct IntCase {
  std::optional<int64_t> value;
  std::string body;  // the 422 body, empty when accepted
};

IntCase Int(const json::value& v) {
  ValidationErrors errors;
  auto value = ValidateInt(v, json::array{"body", "ttl"}, errors);
  EXPECT_EQ(value.has_value(), errors.empty());
  return {value, errors.empty() ? std::string() : errors.ToResponse().body};
}

std::string ErrorType(const IntCase& c) {
  auto parsed = ParseJson(c.body);
  if (!parsed) return "<none>";
  return std::string(parsed->at("detail").at(0).at("type").as_string());
}

TEST(ValidateIntTest, AcceptsIntegers) {
  EXPECT_EQ(Int(json::value(5)).value, 5);
  EXPECT_EQ(Int(json::value(-7)).value, -7);
  EXPECT_EQ(Int(json::value(0)).value, 0);
  EXPECT_EQ(Int(*ParseJson("9223372036854775807")).value, INT64_MAX);
}

TEST(ValidateIntTest, AcceptsIntegralFloats) {
  EXPECT_EQ(Int(*ParseJson("30.0")).value, 30);
  EXPECT_EQ(Int(*ParseJson("-2.0")).value, -2);
  EXPECT_EQ(Int(*ParseJson("3e2")).value, 300);
  // pydantic accepts any integral float inside i64 (not only exactly representable ones).
  EXPECT_EQ(Int(*ParseJson("1e16")).value, 10'000'000'000'000'000);
  EXPECT_EQ(Int(*ParseJson("-9.2e18")).value, -9'200'000'000'000'000'000);
}

TEST(ValidateIntTest, FractionalFloatIsIntFromFloat) {
  const IntCase c = Int(*ParseJson("1.5"));
  EXPECT_FALSE(c.value.has_value());
  auto body = ParseJson(c.body);
  ASSERT_TRUE(body.has_value());
  const json::value& e = body->at("detail").at(0);
  EXPECT_EQ(e.at("type").as_string(), "int_from_float");
  EXPECT_EQ(e.at("loc"), (json::array{"body", "ttl"}));
  EXPECT_EQ(e.at("msg").as_string(),
            "Input should be a valid integer, got a number with a fractional part");
  EXPECT_EQ(e.at("input").as_double(), 1.5);
  EXPECT_EQ(e.as_object().size(), 4u);
  EXPECT_EQ(ErrorType(Int(*ParseJson("-0.25"))), "int_from_float");
}

TEST(ValidateIntTest, IntegralFloatBeyondI64IsIntParsingSize) {
  EXPECT_EQ(ErrorType(Int(*ParseJson("1e19"))), "int_parsing_size");
  EXPECT_EQ(ErrorType(Int(*ParseJson("-1e300"))), "int_parsing_size");
  // Not reachable from ParseJson (which refuses such numbers), but handled.
  const IntCase inf = Int(json::value(std::numeric_limits<double>::infinity()));
  EXPECT_FALSE(inf.value.has_value());
  EXPECT_NE(inf.body.find(R"("type":"finite_number")"), std::string::npos) << inf.body;
}

TEST(ValidateIntTest, HugeIntegersSaturate) {
  // Callers range-check, so a huge value still gets its bound error or clamp.
  EXPECT_EQ(Int(*ParseJson("18446744073709551615")).value, INT64_MAX);
  EXPECT_EQ(Int(json::value("99999999999999999999999")).value, INT64_MAX);
  EXPECT_EQ(Int(json::value("-99999999999999999999999")).value, INT64_MIN);
  EXPECT_EQ(Int(json::value("-9223372036854775808")).value, INT64_MIN);
  EXPECT_EQ(Int(json::value("9223372036854775807")).value, INT64_MAX);
  EXPECT_EQ(Int(json::value("9223372036854775808")).value, INT64_MAX);
}

TEST(ValidateIntTest, NumericStringsAreAccepted) {
  EXPECT_EQ(Int(json::value("42")).value, 42);
  EXPECT_EQ(Int(json::value("-42")).value, -42);
  EXPECT_EQ(Int(json::value("+7")).value, 7);
  EXPECT_EQ(Int(json::value("007")).value, 7);
}

TEST(ValidateIntTest, OtherStringsAreIntParsing) {
  const IntCase c = Int(json::value("x"));
  EXPECT_FALSE(c.value.has_value());
  EXPECT_EQ(c.body,
            R"({"detail":[{"type":"int_parsing","loc":["body","ttl"],)"
            R"("msg":"Input should be a valid integer, unable to parse string as an integer",)"
            R"("input":"x"}]})");
  for (const char* s : {"", "-", "+", "1.5", "1 ", "0x10", "--1", "1e3"}) {
    EXPECT_EQ(ErrorType(Int(json::value(s))), "int_parsing") << s;
  }
}

TEST(ValidateIntTest, NullAndContainersAreIntType) {
  const IntCase c = Int(json::value(nullptr));
  EXPECT_FALSE(c.value.has_value());
  EXPECT_EQ(c.body, R"({"detail":[{"type":"int_type","loc":["body","ttl"],)"
                    R"("msg":"Input should be a valid integer","input":null}]})");
  EXPECT_EQ(ErrorType(Int(json::array{1})), "int_type");
  EXPECT_EQ(ErrorType(Int(json::object{})), "int_type");
}

TEST(ValidateIntTest, BooleansAreLaxIntegers) {
  EXPECT_EQ(Int(json::value(true)).value, 1);
  EXPECT_EQ(Int(json::value(false)).value, 0);
}

}  // namespace
}  // namespace magnetar::relay

namespace magnetar::relay {
namespace {

TEST(SerializeJsonTest, WritesNumbersAsPythonDoes) {
  auto v = ParseJson(R"({"half":0.5,"one":1.0,"big":1e16,"small":1e-05,"int":-3,"u":18446744073709551615,"s":"é\n","a":[true,null]})");
  ASSERT_TRUE(v);
  EXPECT_EQ(SerializeJson(*v),
            R"({"half":0.5,"one":1.0,"big":1e+16,"small":1e-05,"int":-3,"u":18446744073709551615,"s":"é\n","a":[true,null]})");
}

}  // namespace
}  // namespace magnetar::relay
