#include "eftl/codec.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <limits>

namespace magnetar::eftl {
namespace {

Message Wire(std::string_view text) {
  auto m = ParseMessage(text, DecodeMode::kWire);
  EXPECT_TRUE(m.ok()) << text << ": " << m.status().message();
  return m.ok() ? std::move(m).value() : Message{};
}

std::string Error(std::string_view text, DecodeMode mode = DecodeMode::kWire) {
  auto m = ParseMessage(text, mode);
  EXPECT_FALSE(m.ok()) << text;
  return m.ok() ? "" : m.status().message();
}

TEST(EftlCodec, EveryTypeRoundTripsExactly) {
  const std::string text =
      R"({"s":"h\u00e9\"llo\n","l":-9223372036854775808,"d":{"_d_":0.1},"big":{"_d_":1e+300},)"
      R"("dt":{"_m_":1700000000123},"o":{"_o_":"AAEC/w=="},"m":{"x":1,"y":{"z":"deep"}},)"
      R"("sa":["a","b"],"la":[1,2,3],"da":[{"_d_":1.5},{"_d_":"NaN"}],"ta":[{"_m_":1},{"_m_":2}],)"
      R"("ma":[{"a":1},{"b":"2"}],"e":[]})";
  Message m = Wire(text);
  ASSERT_EQ(m.fields.size(), 13u);
  EXPECT_EQ(m.Find("s")->text, "h\xc3\xa9\"llo\n");
  EXPECT_EQ(m.Find("l")->number, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(m.Find("d")->type, FieldType::kDouble);
  EXPECT_EQ(m.Find("d")->real, 0.1);
  EXPECT_EQ(m.Find("dt")->type, FieldType::kDateTime);
  EXPECT_EQ(m.Find("dt")->number, 1700000000123);
  EXPECT_EQ(m.Find("o")->type, FieldType::kOpaque);
  EXPECT_EQ(m.Find("o")->text, std::string("\x00\x01\x02\xff", 4));
  EXPECT_EQ(m.Find("m")->messages.front().Find("y")->messages.front().Find("z")->text, "deep");
  EXPECT_EQ(m.Find("la")->numbers, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(std::isnan(m.Find("da")->reals[1]));
  EXPECT_EQ(m.Find("ta")->type, FieldType::kDateTimeArray);
  EXPECT_EQ(m.Find("ma")->messages.size(), 2u);
  EXPECT_EQ(m.Find("e")->type, FieldType::kEmptyArray);
  // Encoding is canonical: encode(decode(encode(m))) == encode(m).
  const std::string once = EncodeMessage(m);
  EXPECT_EQ(EncodeMessage(Wire(once)), once);
}

TEST(EftlCodec, NonFiniteSpellingsOfEveryClient) {
  for (auto [text, expect] : std::vector<std::pair<std::string, double>>{
           {"NaN", NAN}, {"Infinity", INFINITY}, {"-Infinity", -INFINITY},
           {"+Inf", INFINITY}, {"-Inf", -INFINITY}}) {
    Message m = Wire(R"({"x":{"_d_":")" + text + R"("}})");
    const double d = m.Find("x")->real;
    if (std::isnan(expect)) {
      EXPECT_TRUE(std::isnan(d));
      EXPECT_EQ(EncodeMessage(m), R"({"x":{"_d_":"NaN"}})");
    } else {
      EXPECT_EQ(d, expect) << text;
      EXPECT_EQ(EncodeMessage(m), expect > 0 ? R"({"x":{"_d_":"Infinity"}})" : R"({"x":{"_d_":"-Infinity"}})");
    }
  }
  EXPECT_NE(Error(R"({"x":{"_d_":"lots"}})").find("field 'x'"), std::string::npos);
}

TEST(EftlCodec, DoublesKeepTheirExactValue) {
  for (double d : {0.1, -0.0, 1.0, 2.5e-308, 5e-324, 1.7976931348623157e308, 123456789.125,
                   9.3e18, -1e21}) {
    Message m;
    m.Set("v", Field::Double(d));
    Message back = Wire(EncodeMessage(m));
    const Field* f = back.Find("v");
    ASSERT_EQ(f->type, FieldType::kDouble);
    EXPECT_EQ(f->real, d);
    EXPECT_EQ(std::signbit(f->real), std::signbit(d));
  }
  // A whole double stays a double, never a long.
  Message m;
  m.Set("v", Field::Double(3.0));
  EXPECT_EQ(EncodeMessage(m), R"({"v":{"_d_":3}})");
  EXPECT_EQ(Wire(EncodeMessage(m)).Find("v")->type, FieldType::kDouble);
}

TEST(EftlCodec, DoublesReadBackCorrectlyRounded) {
  // Found by fuzz_eftl_message: Boost.JSON 1.81 alone reads some of these one ulp off.
  for (const char* text : {"1.7000000001e+55", "17000000000999999999999999999999999999999999999999999999900.5",
                           "2.2250738585072014e-308", "9007199254740993.0", "0.30000000000000004"}) {
    Message m = Wire(std::string(R"({"d":{"_d_":)") + text + "}}");
    double expect = 0;
    std::string_view t(text);
    std::from_chars(t.data(), t.data() + t.size(), expect);
    EXPECT_EQ(m.Find("d")->real, expect) << text;
    const std::string once = EncodeMessage(m);
    EXPECT_EQ(EncodeMessage(Wire(once)), once);
  }
  EXPECT_FALSE(ParseJson("{} x", 8).ok());
  EXPECT_FALSE(ParseJson("[[[[1]]]]", 2).ok());
}

TEST(EftlCodec, WireModeRefusesWhatIsNotAFieldType) {
  EXPECT_NE(Error(R"({"b":true})").find("booleans"), std::string::npos);
  EXPECT_NE(Error(R"({"n":null})").find("null"), std::string::npos);
  EXPECT_NE(Error(R"({"a":[1,"x"]})").find("first element"), std::string::npos);
  EXPECT_NE(Error(R"({"u":18446744073709551615})").find("64-bit"), std::string::npos);
  EXPECT_NE(Error(R"({"m":{"_m_":1.5}})").find("_m_"), std::string::npos);
  EXPECT_NE(Error(R"({"o":{"_o_":"!!"}})").find("base64"), std::string::npos);
  EXPECT_NE(Error(R"({"aa":[[1]]})").find("arrays"), std::string::npos);
  EXPECT_NE(Error(R"([1])").find("object"), std::string::npos);
  EXPECT_NE(Error(R"({"x":)").find("JSON"), std::string::npos);
}

TEST(EftlCodec, NestingIsBounded) {
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += R"({"a":)";
  deep += "1";
  for (int i = 0; i < 40; ++i) deep += "}";
  EXPECT_FALSE(ParseMessage(deep, DecodeMode::kWire).ok());
  EXPECT_FALSE(ParseMessage(deep, DecodeMode::kLenient).ok());
  std::string ok;
  for (int i = 0; i < 10; ++i) ok += R"({"a":)";
  ok += "1";
  for (int i = 0; i < 10; ++i) ok += "}";
  EXPECT_TRUE(ParseMessage(ok, DecodeMode::kWire).ok());
}

TEST(EftlCodec, LenientModeMapsAnyJsonObject) {
  auto m = ParseMessage(
      R"({"n":1,"f":1.5,"t":true,"z":null,"o":{"k":"v"},"mixed":[1,2.5],"bad":[1,"x"],)"
      R"("flags":[true,false],"big":18446744073709551615,"fake":{"_d_":"nope"}})",
      DecodeMode::kLenient);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->Find("n")->type, FieldType::kLong);
  EXPECT_EQ(m->Find("f")->type, FieldType::kDouble);
  EXPECT_EQ(m->Find("t")->text, "true");
  EXPECT_EQ(m->Find("z"), nullptr);
  EXPECT_EQ(m->Find("o")->type, FieldType::kMessage);
  EXPECT_EQ(m->Find("mixed")->type, FieldType::kDoubleArray);
  EXPECT_EQ(m->Find("mixed")->reals, (std::vector<double>{1, 2.5}));
  EXPECT_EQ(m->Find("bad"), nullptr);
  EXPECT_EQ(m->Find("flags")->texts, (std::vector<std::string>{"true", "false"}));
  EXPECT_EQ(m->Find("big")->type, FieldType::kDouble);
  // A malformed wrapper would read back as a typed value: left out.
  EXPECT_EQ(m->Find("fake"), nullptr);
}

TEST(EftlCodec, LenientOutputIsAlwaysAValidWireMessage) {
  // Found by fuzz_eftl_message: objects that only look like wrappers once nulls are dropped.
  for (const char* text : {R"({"d":{"_m_":1.5}})", R"({"a":{"_d_":1,"z":null}})",
                           R"({"ma":[{"a":1},{"_o_":"x","n":null}]})", R"({"k":{"_m_":{"x":1}}})"}) {
    auto lenient = ParseMessage(text, DecodeMode::kLenient);
    ASSERT_TRUE(lenient.ok()) << text;
    const std::string once = EncodeMessage(*lenient);
    auto wire = ParseMessage(once, DecodeMode::kWire);
    ASSERT_TRUE(wire.ok()) << text << " -> " << once << ": " << wire.status().message();
    EXPECT_EQ(EncodeMessage(*wire), once);
  }
}

TEST(EftlCodec, Base64IsStrict) {
  std::string out;
  EXPECT_TRUE(Base64Decode("aGVsbG8=", &out));
  EXPECT_EQ(out, "hello");
  EXPECT_TRUE(Base64Decode("aGVsbG8", &out));  // padding optional
  EXPECT_EQ(out, "hello");
  EXPECT_TRUE(Base64Decode("", &out));
  EXPECT_FALSE(Base64Decode("a", &out));
  EXPECT_FALSE(Base64Decode("aGVsbG9=", &out));  // non-zero leftover bits
  EXPECT_FALSE(Base64Decode("aGV sbG8=", &out));
  EXPECT_EQ(Base64Encode("hello"), "aGVsbG8=");
  EXPECT_EQ(Base64Encode(std::string("\xff\x00", 2)), "/wA=");
}

}  // namespace
}  // namespace magnetar::eftl
