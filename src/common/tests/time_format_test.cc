#include "common/time_format.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace magnetar {
namespace {

constexpr int64_t kSecond = 1'000'000;

TEST(FormatRfc3339, EpochHasSixFractionDigitsAndZ) {
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(FormatRfc3339(1), "1970-01-01T00:00:00.000001Z");
}

TEST(FormatRfc3339, AlwaysSixFractionDigits) {
  EXPECT_EQ(FormatRfc3339(1'700'000'000'123'456), "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(FormatRfc3339(1'700'000'000'000'000), "2023-11-14T22:13:20.000000Z");
  EXPECT_EQ(FormatRfc3339(1'700'000'000'100'000), "2023-11-14T22:13:20.100000Z");
  EXPECT_EQ(FormatRfc3339(1'700'000'000'000'000).size(), 27u);
}

TEST(FormatRfc3339, LeapYearDates) {
  EXPECT_EQ(FormatRfc3339(1709164800 * kSecond), "2024-02-29T00:00:00.000000Z");
  EXPECT_EQ(FormatRfc3339(1709164800 * kSecond - 1), "2024-02-28T23:59:59.999999Z");
  EXPECT_EQ(FormatRfc3339(951782400 * kSecond), "2000-02-29T00:00:00.000000Z");  // 400-year rule
  // 2100 is not a leap year: Feb 28 is followed by Mar 1.
  EXPECT_EQ(FormatRfc3339(4107542400 * kSecond), "2100-03-01T00:00:00.000000Z");
  EXPECT_EQ(FormatRfc3339((4107542400 - 1) * kSecond), "2100-02-28T23:59:59.000000Z");
}

TEST(FormatRfc3339, BeforeTheEpoch) {
  EXPECT_EQ(FormatRfc3339(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(FormatRfc3339(-86400 * kSecond), "1969-12-31T00:00:00.000000Z");
  EXPECT_EQ(FormatRfc3339(-2203891200 * kSecond), "1900-03-01T00:00:00.000000Z");
}

TEST(FormatRfc3339, AppendDoesNotClobber) {
  std::string out = "t=";
  AppendRfc3339(out, 0);
  EXPECT_EQ(out, "t=1970-01-01T00:00:00.000000Z");
}

TEST(ParseRfc3339, RoundTrip) {
  for (int64_t t : {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{1'700'000'000'123'456},
                    int64_t{1709164800} * kSecond + 999'999, int64_t{-2203891200} * kSecond + 7,
                    int64_t{253402300799} * kSecond + 999'999 /* 9999-12-31T23:59:59.999999 */}) {
    auto parsed = ParseRfc3339(FormatRfc3339(t));
    ASSERT_TRUE(parsed.has_value()) << FormatRfc3339(t);
    EXPECT_EQ(*parsed, t) << FormatRfc3339(t);
  }
}

TEST(ParseRfc3339, AcceptsOffsetsAndShortFractions) {
  EXPECT_EQ(ParseRfc3339("2023-11-14T22:13:20.123456+00:00"), 1'700'000'000'123'456);
  EXPECT_EQ(ParseRfc3339("2023-11-15T00:13:20.123456+02:00"), 1'700'000'000'123'456);
  EXPECT_EQ(ParseRfc3339("2023-11-14T21:13:20.123456-01:00"), 1'700'000'000'123'456);
  EXPECT_EQ(ParseRfc3339("2023-11-14T22:13:20Z"), 1'700'000'000'000'000);
  EXPECT_EQ(ParseRfc3339("2023-11-14T22:13:20.5Z"), 1'700'000'000'500'000);
  EXPECT_EQ(ParseRfc3339("2023-11-14T22:13:20.123456789Z"), 1'700'000'000'123'456);
  EXPECT_EQ(ParseRfc3339("2023-11-14T22:13:20.123456z"), 1'700'000'000'123'456);
  EXPECT_EQ(ParseRfc3339("2023-11-14t22:13:20.123456Z"), 1'700'000'000'123'456);
  EXPECT_EQ(ParseRfc3339("2023-11-14 22:13:20.123456Z"), 1'700'000'000'123'456);
  EXPECT_EQ(ParseRfc3339("2023-11-15T22:12:20.123456+23:59"), 1'700'000'000'123'456);
}

TEST(ParseRfc3339, RejectsGarbage) {
  for (const char* s : {"", "garbage", "2023-11-14", "2023-11-14T22:13:20",
                        "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20ZZ", "2023-11-14T22:13:20Zx",
                        "2023-11-14T22:13:20+0000", "2023-11-14T22:13:20+00",
                        "2023/11/14T22:13:20Z",
                        "2023-11-14X22:13:20Z", "2023-02-29T00:00:00Z", "2023-13-01T00:00:00Z",
                        "2023-00-10T00:00:00Z", "2023-11-14T24:00:00Z", "2023-11-14T22:60:00Z",
                        " 2023-11-14T22:13:20Z", "2023-11-14T22:13:20Z ", "2023-1-14T22:13:20Z",
                        "+023-11-14T22:13:20Z", "2023-11-14T22:13:20+24:00",
                        "2023-11-14T22:13:20+99:99", "2023-11-14T22:13:20+00:60",
                        "2023-11-14T22:13:20.123456+0a:00"}) {
    EXPECT_FALSE(ParseRfc3339(s).has_value()) << '"' << s << '"';
  }
}

}  // namespace
}  // namespace magnetar
