// The dashboard (web/assets/dashboard.css) and the device sign-in page (device_page.cc) share one
// look: the same palette, light and dark. This keeps them from drifting apart.

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <string>

#include "relay/device_page.h"
#include "web/assets.h"

namespace magnetar::relay {
namespace {

// The custom properties of the first `:root{...}` block at or after `from`.
std::map<std::string, std::string> Palette(const std::string& css, size_t from = 0) {
  std::map<std::string, std::string> out;
  const size_t start = css.find(":root{", from);
  if (start == std::string::npos) return out;
  const std::string block = css.substr(start, css.find('}', start) - start);
  static const std::regex kVar(R"((--[a-z0-9-]+):([^;}]+))");
  for (std::sregex_iterator it(block.begin(), block.end(), kVar), end; it != end; ++it) {
    out[(*it)[1]] = (*it)[2];
  }
  return out;
}

TEST(SharedLookTest, DashboardUsesTheDevicePagePalette) {
  const std::string page = MessagePage("Title", "Text");
  std::string dashboard(web::FindAsset("dashboard.css")->body);
  for (char& c : dashboard) {
    if (c == '\n') c = ' ';
  }
  // Whitespace after ';' in the dashboard's file is layout only.
  dashboard = std::regex_replace(dashboard, std::regex(R"(;\s+)"), ";");
  const size_t page_dark = page.find("prefers-color-scheme:dark");
  const size_t dash_dark = dashboard.find("prefers-color-scheme:dark");
  ASSERT_NE(page_dark, std::string::npos);
  ASSERT_NE(dash_dark, std::string::npos);
  for (auto [page_from, dash_from] : {std::pair<size_t, size_t>{0, 0}, {page_dark, dash_dark}}) {
    const auto device = Palette(page, page_from);
    const auto dash = Palette(dashboard, dash_from);
    ASSERT_FALSE(device.empty());
    for (const auto& [name, value] : device) {
      ASSERT_TRUE(dash.count(name)) << name << " missing from dashboard.css";
      EXPECT_EQ(dash.at(name), value) << name;
    }
  }
}

}  // namespace
}  // namespace magnetar::relay
