#include "relay/device_page.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include "common/random.h"

namespace magnetar::relay {
namespace {

constexpr char kHostile[] = R"(<script>alert("x")</script><img src=x onerror='y'>&amp;)";

DeviceRecord Record(std::optional<std::string> hint = std::string(kHostile), bool pair = false) {
  DeviceRecord r;
  r.device_hash = std::string(64, 'a');
  r.user_code = "BCDF-GHJK";
  r.client_hint = std::move(hint);
  r.pair = pair;
  r.issued_at = 1'700'000'000'000'000;
  r.expires_at = r.issued_at + 600'000'000;
  return r;
}

const DevicePageUser kUser{"alice<b>", "csrf-token-value"};

void ExpectNoActiveContent(const std::string& html) {
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("style=\""), std::string::npos);  // the CSP hash covers only <style>
  EXPECT_EQ(html.find("http://"), std::string::npos);   // nothing external
  EXPECT_EQ(html.find("https://"), std::string::npos);
}

TEST(HtmlEscapeTest, EscapesMarkupCharacters) {
  EXPECT_EQ(HtmlEscape(R"(<a href="x" title='y'>&</a>)"),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
  EXPECT_EQ(HtmlEscape("plain text ünïcode"), "plain text ünïcode");
}

TEST(DevicePageTest, HostileClientHintIsEscapedEverywhere) {
  for (const std::string& html :
       {ApprovePage(Record(), kUser, Record().issued_at), SignInPage(Record(), Record().issued_at),
        SignInPage(Record(), Record().issued_at, "bad <password>", "<mallory>")}) {
    ExpectNoActiveContent(html);
    EXPECT_NE(html.find("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"), std::string::npos);
    EXPECT_NE(html.find("&amp;amp;"), std::string::npos);
    EXPECT_NE(html.find("onerror=&#39;y&#39;&gt;"), std::string::npos);  // text, not a tag
  }
  const std::string approve = ApprovePage(Record(), kUser, Record().issued_at);
  EXPECT_NE(approve.find("alice&lt;b&gt;"), std::string::npos);
  EXPECT_EQ(approve.find("alice<b>"), std::string::npos);
}

TEST(DevicePageTest, ApprovePageCarriesTheCsrfTokenInEveryForm) {
  const std::string html = ApprovePage(Record(), kUser, Record().issued_at);
  size_t forms = 0, tokens = 0;
  for (size_t at = html.find("<form method=\"post\""); at != std::string::npos;
       at = html.find("<form method=\"post\"", at + 1)) {
    ++forms;
  }
  const std::string hidden = R"(<input type="hidden" name="csrf_token" value="csrf-token-value">)";
  for (size_t at = html.find(hidden); at != std::string::npos; at = html.find(hidden, at + 1)) {
    ++tokens;
  }
  EXPECT_EQ(forms, 3u);  // approve, deny, sign out
  EXPECT_EQ(tokens, 3u);
  EXPECT_NE(html.find(R"(action="/auth/device/approve")"), std::string::npos);
  EXPECT_NE(html.find(R"(action="/auth/device/deny")"), std::string::npos);
  EXPECT_NE(html.find("BCDF-GHJK"), std::string::npos);
  EXPECT_NE(html.find("2023-11-14 22:13:20 UTC"), std::string::npos);
  EXPECT_NE(html.find("in 10 minutes"), std::string::npos);
}

TEST(DevicePageTest, PairNoticeOnlyWhenPaired) {
  EXPECT_EQ(ApprovePage(Record(), kUser, 0).find("pair-notice"), std::string::npos);
  EXPECT_NE(ApprovePage(Record("cli", true), kUser, 0).find("pair-notice"), std::string::npos);
  EXPECT_NE(SignInPage(Record("cli", true), 0).find("pair-notice"), std::string::npos);
}

TEST(DevicePageTest, MissingHintIsSaidSo) {
  EXPECT_NE(SignInPage(Record(std::nullopt), 0).find("(not given)"), std::string::npos);
}

TEST(DevicePageTest, CspAllowsExactlyThePageStylesheet) {
  const std::string html = EnterCodePage(std::nullopt);
  const size_t open = html.find("<style>");
  const size_t close = html.find("</style>");
  ASSERT_NE(open, std::string::npos);
  ASSERT_NE(close, std::string::npos);
  const std::string css = html.substr(open + 7, close - open - 7);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(css.data()), css.size(), digest);
  std::string b64 = Base64UrlEncode(std::string_view(reinterpret_cast<char*>(digest), 32));
  for (char& c : b64) c = c == '-' ? '+' : c == '_' ? '/' : c;
  b64 += "=";
  const std::string& csp = DevicePageCsp();
  EXPECT_NE(csp.find("style-src 'sha256-" + b64 + "'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos);
  EXPECT_NE(csp.find("form-action 'self'"), std::string::npos);
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe"), std::string::npos);
}

TEST(DevicePageTest, ResponsesCarryTheSecurityHeaders) {
  const http::Response r = DevicePageResponse(200, DeniedPage());
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  auto header = [&](std::string_view name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return std::string();
  };
  EXPECT_EQ(header("X-Frame-Options"), "DENY");
  EXPECT_EQ(header("Cache-Control"), "no-store");
  EXPECT_EQ(header("Referrer-Policy"), "same-origin");
  EXPECT_EQ(header("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(header("Content-Security-Policy"), DevicePageCsp());
}

TEST(DevicePageTest, EveryPageIsSelfContained) {
  for (const std::string& html :
       {EnterCodePage(std::nullopt), EnterCodePage(kUser, "bad <code>", "<typed>"),
        CodeNotRecognisedPage(), ApprovedPage("<bob>"), DeniedPage(),
        MessagePage("T<i>", "M<b>", "/auth/device?user_code=\"x")}) {
    ExpectNoActiveContent(html);
    EXPECT_TRUE(html.starts_with("<!doctype html>"));
    EXPECT_NE(html.find("</html>"), std::string::npos);
  }
}

}  // namespace
}  // namespace magnetar::relay
