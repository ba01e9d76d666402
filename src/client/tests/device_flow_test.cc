// DeviceFlow against a scripted loopback server with a fake sleeper and clock (spec clients.md
// §A.4, §A.10.11).

#include "client/device_flow.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>

#include "client/errors.h"
#include "client/tests/support/fake_http_server.h"
#include "client/tests/support/process.h"

namespace magnetar::client {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using testsupport::FakeHttpServer;
using testsupport::Recorded;
using testsupport::Reply;
using testsupport::TempDir;

std::string CodeBody(int expires_in = 600, int interval = 5) {
  return json::serialize(json::object{
      {"device_code", "DC"},
      {"user_code", "BCDF-GHJK"},
      {"verification_uri", "http://127.0.0.1/auth/device"},
      {"verification_uri_complete", "http://127.0.0.1/auth/device?user_code=BCDF-GHJK"},
      {"expires_in", expires_in},
      {"interval", interval}});
}

Reply Pending() { return Reply{400, R"({"error":"authorization_pending"})"}; }
Reply SlowDown() { return Reply{400, R"({"error":"slow_down"})"}; }
Reply Tokens(bool pair = false) {
  json::object o{{"access_token", "AT"},
                 {"token_type", "bearer"},
                 {"expires_in", 600},
                 {"refresh_token", "RT-1"}};
  if (pair) o["refresh_token_secondary"] = "RT-2";
  return Reply{200, json::serialize(o)};
}

// A fake clock that moves only when the flow sleeps; records the sleeps and what was shown.
struct Harness {
  std::chrono::steady_clock::time_point now{};
  std::vector<std::chrono::seconds> sleeps;
  std::vector<std::pair<std::string, std::string>> shown;
  std::vector<std::chrono::steady_clock::time_point> poll_times;
  DeviceFlowOptions options(bool pair = false) {
    DeviceFlowOptions o;
    o.pair = pair;
    o.sleep = [this](std::chrono::seconds d) {
      sleeps.push_back(d);
      now += d;
    };
    o.now = [this] { return now; };
    o.on_user_code = [this](std::string_view uri, std::string_view code) {
      shown.emplace_back(uri, code);
    };
    return o;
  }
};

TEST(DeviceFlow, FirstPollAfterOneIntervalAndTheCompleteUriShown) {
  FakeHttpServer server;
  server.script("POST", "/auth/device/code", {Reply{200, CodeBody()}});
  server.script("POST", "/auth/device/token", {Pending(), Pending(), Tokens()});
  TempDir dir;
  CredentialsFile file(dir.path() / "c.json");
  Harness h;
  DeviceFlowResult r = DeviceFlow(server.url(), file, h.options()).run();
  EXPECT_EQ(h.shown.at(0).first, "http://127.0.0.1/auth/device?user_code=BCDF-GHJK");
  EXPECT_EQ(h.shown.at(0).second, "BCDF-GHJK");
  EXPECT_EQ(h.sleeps, (std::vector<std::chrono::seconds>{5s, 5s, 5s}));
  EXPECT_EQ(server.count("POST", "/auth/device/token"), 3u);
  auto code_req = server.requests("POST", "/auth/device/code").at(0);
  EXPECT_EQ(code_req.body, "client_hint=pulsar-config");  // no pair=true
  auto poll = server.requests("POST", "/auth/device/token").at(0);
  EXPECT_EQ(poll.body,
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=DC");
  EXPECT_EQ(r.refresh_token, "RT-1");
  EXPECT_EQ(r.access_token, "AT");
  EXPECT_EQ(r.expires_in, 600);
  auto saved = file.load();
  ASSERT_TRUE(saved);
  EXPECT_EQ(saved->refresh_token, "RT-1");
  EXPECT_EQ(saved->access_token, "AT");
  EXPECT_EQ(saved->relay_url, server.url());
}

TEST(DeviceFlow, SlowDownAddsFiveSecondsForGood) {
  FakeHttpServer server;
  server.script("POST", "/auth/device/code", {Reply{200, CodeBody(600, 2)}});
  server.script("POST", "/auth/device/token",
                {SlowDown(), Pending(), SlowDown(), Pending(), Tokens()});
  TempDir dir;
  CredentialsFile file(dir.path() / "c.json");
  Harness h;
  DeviceFlow(server.url(), file, h.options()).run();
  EXPECT_EQ(h.sleeps, (std::vector<std::chrono::seconds>{2s, 7s, 7s, 12s, 12s}));
}

TEST(DeviceFlow, IntervalAtLeastOneSecondAndDefaults) {
  FakeHttpServer server;
  server.script(
      "POST", "/auth/device/code",
      {Reply{
          200,
          R"({"device_code":"DC","user_code":"X","verification_uri_complete":"u","interval":0})"}});
  server.script("POST", "/auth/device/token", {Tokens()});
  TempDir dir;
  CredentialsFile file(dir.path() / "c.json");
  Harness h;
  DeviceFlow(server.url(), file, h.options()).run();
  EXPECT_EQ(h.sleeps, (std::vector<std::chrono::seconds>{1s}));
}

std::string FlowError(FakeHttpServer& server, Harness& h, std::string* code = nullptr,
                      DeviceFlowOptions* custom = nullptr) {
  TempDir dir;
  CredentialsFile file(dir.path() / "c.json");
  try {
    DeviceFlow(server.url(), file, custom ? *custom : h.options()).run();
  } catch (const DeviceFlowError& e) {
    if (code) *code = e.code();
    EXPECT_FALSE(file.exists());
    return e.what();
  }
  return "<no DeviceFlowError>";
}

TEST(DeviceFlow, TerminalErrors) {
  struct Case {
    Reply reply;
    std::string text;
    std::string code;
  };
  for (const Case& c :
       {Case{Reply{400, R"({"error":"access_denied"})"}, "denied", "access_denied"},
        Case{Reply{400, R"({"error":"expired_token"})"}, "expired", "expired_token"},
        Case{Reply{400, R"({"error":"unsupported_grant_type"})"}, "HTTP 400",
             "unsupported_grant_type"},
        Case{Reply{429, R"({"error":"Rate limit exceeded: 30 per 1 minute"})"}, "HTTP 429",
             "Rate limit exceeded: 30 per 1 minute"},
        Case{Reply{502, "<html>bad gateway</html>", "text/html"}, "HTTP 502", ""}}) {
    FakeHttpServer server;
    server.script("POST", "/auth/device/code", {Reply{200, CodeBody()}});
    server.script("POST", "/auth/device/token", {Pending(), c.reply});
    Harness h;
    std::string code;
    const std::string m = FlowError(server, h, &code);
    EXPECT_NE(m.find(c.text), std::string::npos) << m;
    EXPECT_EQ(code, c.code);
    EXPECT_EQ(server.count("POST", "/auth/device/token"), 2u);
  }
}

TEST(DeviceFlow, LocalDeadlineIsMinOfExpiresInAndMaxWait) {
  FakeHttpServer server;
  server.script("POST", "/auth/device/code", {Reply{200, CodeBody(12, 5)}});
  server.script("POST", "/auth/device/token", {Pending()});
  Harness h;
  const std::string m = FlowError(server, h);
  EXPECT_NE(m.find("expired before the sign-in completed"), std::string::npos);
  // Checks at 0, 5, 10 (< 12): three polls; at 15 the deadline has passed.
  EXPECT_EQ(server.count("POST", "/auth/device/token"), 3u);

  FakeHttpServer server2;
  server2.script("POST", "/auth/device/code", {Reply{200, CodeBody(600, 5)}});
  server2.script("POST", "/auth/device/token", {Pending()});
  Harness h2;
  DeviceFlowOptions o = h2.options();
  o.max_wait = 7s;
  FlowError(server2, h2, nullptr, &o);
  EXPECT_EQ(server2.count("POST", "/auth/device/token"), 2u);  // at 0 and 5; 10 >= 7
}

TEST(DeviceFlow, NetworkAndCodeRequestFailures) {
  FakeHttpServer server;
  server.script("POST", "/auth/device/code",
                {Reply{400, R"({"error":"device_authorization_unavailable"})"}});
  Harness h;
  EXPECT_NE(FlowError(server, h).find("Failed to request device code"), std::string::npos);

  FakeHttpServer server2;
  server2.script("POST", "/auth/device/code", {Reply{200, CodeBody()}});
  Reply dropped;
  dropped.drop = true;
  server2.script("POST", "/auth/device/token", {dropped});
  Harness h2;
  EXPECT_NE(FlowError(server2, h2).find("Polling failed (network)"), std::string::npos);
  EXPECT_EQ(server2.count("POST", "/auth/device/token"), 1u);  // not retried
}

TEST(DeviceFlow, PairReturnsTheSecondaryButNeverSavesIt) {
  FakeHttpServer server;
  server.script("POST", "/auth/device/code", {Reply{200, CodeBody()}});
  server.script("POST", "/auth/device/token", {Tokens(true)});
  TempDir dir;
  CredentialsFile file(dir.path() / "c.json");
  Harness h;
  DeviceFlowOptions o = h.options(true);
  o.client_hint = "pulsar-config on host-1";
  DeviceFlowResult r = DeviceFlow(server.url(), file, o).run();
  EXPECT_EQ(server.requests("POST", "/auth/device/code").at(0).body,
            "client_hint=pulsar-config+on+host-1&pair=true");
  EXPECT_EQ(r.refresh_token_secondary, "RT-2");
  EXPECT_EQ(file.load()->refresh_token, "RT-1");
  std::ifstream in(file.path());
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text.find("RT-2"), std::string::npos);
  EXPECT_EQ(text.find("secondary"), std::string::npos);
}

TEST(DeviceFlow, BannerLayout) {
  const std::string b = device_banner("https://r/auth/device?user_code=AB", "AB");
  const std::string bar(64, '=');
  EXPECT_EQ(b, "\n" + bar +
                   "\n  Visit:  https://r/auth/device?user_code=AB\n  Code:   AB\n\n"
                   "  (Approve via your configured identity provider; this CLI will\n"
                   "   wait until the sign-in completes.)\n" +
                   bar + "\n");
}

}  // namespace
}  // namespace magnetar::client
