#include "http/target.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace magnetar::http {
namespace {

struct Parsed {
  bool ok = false;
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;
  ParsedTarget target;
};

Parsed Fast(std::string_view t) {
  Parsed p;
  RequestContext ctx;
  p.ok = ParseTarget(t, ctx, p.target);
  p.path = ctx.path;
  p.query = ctx.query;
  return p;
}

Parsed General(std::string_view t) {
  Parsed p;
  RequestContext ctx;
  p.ok = detail::ParseTargetGeneral(t, ctx, p.target);
  p.path = ctx.path;
  p.query = ctx.query;
  return p;
}

void ExpectSame(std::string_view t) {
  const Parsed a = Fast(t);
  const Parsed b = General(t);
  EXPECT_EQ(a.ok, b.ok) << t;
  EXPECT_EQ(a.path, b.path) << t;
  EXPECT_EQ(a.query, b.query) << t;
  EXPECT_EQ(a.target.segments, b.target.segments) << t;
  EXPECT_EQ(a.target.raw_path, b.target.raw_path) << t;
  EXPECT_EQ(a.target.trailing_slash, b.target.trailing_slash) << t;
}

TEST(ParseTargetTest, PlainPathsSplitIntoSegments) {
  const Parsed p = Fast("/api/v1/topics/jobs.x-1");
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.path, "/api/v1/topics/jobs.x-1");
  EXPECT_EQ(p.target.segments, (std::vector<std::string>{"api", "v1", "topics", "jobs.x-1"}));
  EXPECT_FALSE(p.target.trailing_slash);
  EXPECT_TRUE(Fast("/api/v1/topics/").target.trailing_slash);
  EXPECT_FALSE(Fast("/").target.trailing_slash);
}

TEST(ParseTargetTest, TheFastPathAgreesWithTheGeneralParser) {
  for (std::string_view t :
       {"/", "//", "/a", "/a/", "/a//b", "//a//b//", "/api/v1/messages", "/api/v1/messages/bulk",
        "/a:b@c/!$&'()*+,;=~", "/a%20b", "/a%2Fb/c", "/a?x=1&y=%20", "/a?", "/a#frag", "a/b", "",
        "*", "/a b", "/caf\xc3\xa9", "/a\"b", "/a<b>", "/a\\b", "/a%zz", "/ws/v2/consumer/x/y/z"}) {
    ExpectSame(t);
  }
  // Every byte at the end of a path.
  for (int c = 0; c < 256; ++c) {
    std::string t = "/topics/x";
    t.push_back(static_cast<char>(c));
    ExpectSame(t);
  }
}

}  // namespace
}  // namespace magnetar::http
