#include "web/assets.h"

#include <gtest/gtest.h>

namespace magnetar::web {
namespace {

TEST(AssetsTest, EveryDashboardFileIsEmbedded) {
  for (const char* name : {"dashboard.html", "dashboard.css", "dashboard.js"}) {
    const Asset* a = FindAsset(name);
    ASSERT_NE(a, nullptr) << name;
    EXPECT_GT(a->body.size(), 100u) << name;
  }
  EXPECT_EQ(FindAsset("dashboard.html")->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(FindAsset("nope.js"), nullptr);
}

TEST(AssetsTest, ThePageLoadsOnlyItsOwnFiles) {
  const std::string_view html = FindAsset("dashboard.html")->body;
  EXPECT_NE(html.find("/ui/dashboard.js"), std::string_view::npos);
  EXPECT_NE(html.find("/ui/dashboard.css"), std::string_view::npos);
  // No CDN, no other origin.
  EXPECT_EQ(html.find("http://"), std::string_view::npos);
  EXPECT_EQ(html.find("https://"), std::string_view::npos);
  // No inline script or style: the Content-Security-Policy forbids them.
  EXPECT_EQ(html.find("<script>"), std::string_view::npos);
  EXPECT_EQ(html.find("style="), std::string_view::npos);
}

}  // namespace
}  // namespace magnetar::web
