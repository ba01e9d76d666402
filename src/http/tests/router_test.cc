#include "http/router.h"

#include <gtest/gtest.h>

namespace magnetar::http {
namespace {

Handler Named(int* hit, int value) {
  return [hit, value](const RequestContextPtr&, Responder) { *hit = value; };
}

TEST(RouterTest, MatchesLiteralAndParameterSegments) {
  Router router;
  int hit = 0;
  router.Add(Verb::get, "/api/v1/topics", Named(&hit, 1));
  router.Add(Verb::get, "/api/v1/topics/stats", Named(&hit, 2));
  router.Add(Verb::get, "/api/v1/topics/{topic_name}", Named(&hit, 3));
  router.Add(Verb::get, "/api/v1/topics/{topic_name}/messages", Named(&hit, 4));

  auto m = router.Find(Verb::get, SplitPath("/api/v1/topics/stats"), false, "/api/v1/topics/stats");
  ASSERT_EQ(m.kind, Router::Match::Kind::kFound);
  (*m.handler)(nullptr, nullptr);
  EXPECT_EQ(hit, 2);  // declared before {topic_name}: must win (relay route-order regression)

  m = router.Find(Verb::get, SplitPath("/api/v1/topics/jobs/messages"), false, "");
  ASSERT_EQ(m.kind, Router::Match::Kind::kFound);
  (*m.handler)(nullptr, nullptr);
  EXPECT_EQ(hit, 4);
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0].first, "topic_name");
  EXPECT_EQ(m.params[0].second, "jobs");
}

TEST(RouterTest, WrongMethodIs405AndUnknownIs404) {
  Router router;
  int hit = 0;
  router.Add(Verb::post, "/api/v1/messages", Named(&hit, 1));
  EXPECT_EQ(router.Find(Verb::get, SplitPath("/api/v1/messages"), false, "").kind,
            Router::Match::Kind::kMethodNotAllowed);
  EXPECT_EQ(router.Find(Verb::get, SplitPath("/nope"), false, "").kind,
            Router::Match::Kind::kNotFound);
}

TEST(RouterTest, TrailingSlashRedirectsToDeclaredPath) {
  Router router;
  int hit = 0;
  router.Add(Verb::get, "/api/v1/topics", Named(&hit, 1));
  router.Add(Verb::get, "/auth/device/", Named(&hit, 2));
  auto m = router.Find(Verb::get, SplitPath("/api/v1/topics/"), true, "/api/v1/topics/");
  ASSERT_EQ(m.kind, Router::Match::Kind::kRedirect);
  EXPECT_EQ(m.redirect_to, "/api/v1/topics");
  m = router.Find(Verb::get, SplitPath("/auth/device/"), true, "/auth/device/");
  EXPECT_EQ(m.kind, Router::Match::Kind::kFound);
}

TEST(RouterTest, RedirectNeverPointsAtAnotherHost) {
  // "//api/v1/topics" would be a protocol-relative Location: the browser would go to host "api".
  Router router;
  int hit = 0;
  router.Add(Verb::get, "/api/v1/topics", Named(&hit, 1));
  for (const char* raw : {"//api/v1/topics/", "///api/v1/topics/", "////api//v1/topics/"}) {
    SCOPED_TRACE(raw);
    auto m = router.Find(Verb::get, SplitPath(raw), true, raw);
    ASSERT_EQ(m.kind, Router::Match::Kind::kRedirect);
    EXPECT_EQ(m.redirect_to.substr(0, 2).find("//"), std::string::npos) << m.redirect_to;
    EXPECT_EQ(m.redirect_to.front(), '/');
  }
}

}  // namespace
}  // namespace magnetar::http
