#include "eftl/matcher.h"

#include <gtest/gtest.h>

#include <set>

#include "eftl/matcher_index.h"

namespace magnetar::eftl {
namespace {

Message Msg(std::string_view text) {
  auto m = ParseMessage(text, DecodeMode::kWire);
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(m).value() : Message{};
}

bool Match(std::string_view matcher, std::string_view message) {
  auto m = ParseMatcher(matcher);
  EXPECT_TRUE(m.ok()) << matcher << ": " << m.status().message();
  return m.ok() && m->Matches(Msg(message));
}

TEST(EftlMatcher, SpecExamples) {
  const char* acme = R"({"name":"acme","cost":1000})";
  const char* cyberdyne = R"({"name":"cyberdyne","cost":1000})";
  EXPECT_TRUE(Match(R"({"name":"acme","cost":1000})", acme));
  EXPECT_FALSE(Match(R"({"name":"acme","cost":1000})", cyberdyne));
  EXPECT_TRUE(Match(R"({"cost":true})", acme));
  EXPECT_TRUE(Match(R"({"cost":true})", cyberdyne));
  EXPECT_FALSE(Match(R"({"cost":false})", acme));
  EXPECT_TRUE(Match(R"({"other":false})", acme));
  EXPECT_TRUE(Match("", acme));
  EXPECT_TRUE(Match("{}", acme));
  EXPECT_TRUE(Match("  ", acme));
}

TEST(EftlMatcher, TypeStrict) {
  EXPECT_FALSE(Match(R"({"n":"5"})", R"({"n":5})"));
  EXPECT_FALSE(Match(R"({"n":5})", R"({"n":"5"})"));
  EXPECT_FALSE(Match(R"({"n":5})", R"({"n":{"_d_":5}})"));
  EXPECT_TRUE(Match(R"({"n":true})", R"({"n":{"_d_":5}})"));
}

TEST(EftlMatcher, InvalidMatchersAreRefusedWithAReason) {
  for (const char* bad : {"{", "[1]", R"({"a":1.5})", R"({"a":null})", R"({"a":[1]})",
                          R"({"a":{"b":1}})", R"({"":1})",
                          R"({"a":18446744073709551615})"}) {
    auto m = ParseMatcher(bad);
    EXPECT_FALSE(m.ok()) << bad;
    EXPECT_FALSE(m.status().message().empty());
  }
  // A field given twice: the JSON parser keeps the last one.
  EXPECT_TRUE(Match(R"({"a":1,"a":2})", R"({"a":2})"));
  EXPECT_FALSE(ParseMatcher(R"({"a":")" + std::string(257, 'x') + R"("})").ok());
  EXPECT_TRUE(ParseMatcher(R"({"a":")" + std::string(256, 'x') + R"("})").ok());
}

TEST(EftlMatcherIndex, FindsExactlyTheMatchingSubscriptions) {
  MatcherIndex index;
  auto add = [&](uint64_t id, std::string_view text) {
    index.Add(id, std::make_shared<const Matcher>(ParseMatcher(text).value()));
  };
  add(1, R"({"name":"acme"})");
  add(2, R"({"name":"acme","cost":1000})");
  add(3, R"({"cost":1000})");
  add(4, R"({"cost":true})");
  add(5, "");
  add(6, R"({"name":"other"})");
  add(7, R"({"cost":"1000"})");
  auto matches = [&](std::string_view msg) {
    std::set<uint64_t> out;
    index.ForEachMatch(Msg(msg), [&](uint64_t id) { EXPECT_TRUE(out.insert(id).second); });
    return out;
  };
  EXPECT_EQ(matches(R"({"name":"acme","cost":1000})"), (std::set<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(matches(R"({"name":"acme"})"), (std::set<uint64_t>{1, 5}));
  EXPECT_EQ(matches(R"({"cost":"1000"})"), (std::set<uint64_t>{4, 5, 7}));
  index.Remove(1);
  index.Remove(5);
  EXPECT_EQ(matches(R"({"name":"acme"})"), (std::set<uint64_t>{}));
  EXPECT_EQ(index.size(), 5u);
}

TEST(EftlMatcherIndex, CostFollowsCandidatesNotSubscriptions) {
  MatcherIndex index;
  for (uint64_t i = 0; i < 10000; ++i) {
    index.Add(i, std::make_shared<const Matcher>(
                     ParseMatcher(R"({"k":)" + std::to_string(i) + "}").value()));
  }
  int calls = 0;
  index.ForEachMatch(Msg(R"({"k":4242,"other":"x"})"), [&](uint64_t id) {
    EXPECT_EQ(id, 4242u);
    ++calls;
  });
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace magnetar::eftl
