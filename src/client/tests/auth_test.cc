// Authenticators and AuthManager against a scripted loopback server (spec clients.md §A.3, §A.7
// "Auth", §A.10.7-10).

#include "client/auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <boost/json/serialize.hpp>
#include <thread>

#include "client/errors.h"
#include "client/json_util.h"
#include "client/tests/support/fake_http_server.h"
#include "client/tests/support/process.h"

namespace magnetar::client {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testsupport::FakeHttpServer;
using testsupport::Reply;
using testsupport::TempDir;

// A steady clock the test moves by hand.
struct ManualSteady {
  std::atomic<std::int64_t> ms{1'000'000};
  std::function<std::chrono::steady_clock::time_point()> fn() {
    return [this] {
      return std::chrono::steady_clock::time_point(std::chrono::milliseconds(ms.load()));
    };
  }
  void advance(std::chrono::milliseconds d) { ms += d.count(); }
};

std::string TokenBody(const std::string& at, std::optional<int> expires_in,
                      std::optional<std::string> rt) {
  boost::json::object o{{"access_token", at}, {"token_type", "bearer"}};
  if (expires_in) o["expires_in"] = *expires_in;
  if (rt) o["refresh_token"] = *rt;
  return boost::json::serialize(o);
}

std::string AuthMessage(const std::function<void()>& f) {
  try {
    f();
  } catch (const AuthError& e) {
    return e.what();
  }
  return "<no AuthError>";
}

TEST(PasswordAuthenticator, CapturesTheRefreshTokenIntoTheStore) {
  FakeHttpServer server;
  server.script("POST", "/auth/login", {Reply{200, TokenBody("AT", std::nullopt, "RT-1")}});
  TempDir dir;
  auto file = std::make_shared<CredentialsFile>(dir.path() / "c.json");
  PasswordAuthenticator auth(server.url(), "alice", "s3cret&=", file);
  AccessToken t = auth.authenticate();
  EXPECT_EQ(t.token, "AT");
  EXPECT_EQ(t.expires_in, 3600s);  // default when the answer has none
  auto saved = file->load();
  ASSERT_TRUE(saved);
  EXPECT_EQ(saved->refresh_token, "RT-1");
  EXPECT_EQ(saved->relay_url, server.url());
  struct stat st {};
  ::stat(file->path().c_str(), &st);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto req = server.requests("POST", "/auth/login").at(0);
  EXPECT_EQ(req.header("content-type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(req.body, "username=alice&password=s3cret%26%3D&grant_type=password");
}

TEST(PasswordAuthenticator, FailuresAreAuthErrors) {
  FakeHttpServer server;
  server.script("POST", "/auth/login",
                {Reply{401, R"({"detail":"Incorrect username or password"})"},
                 Reply{200, R"({"token_type":"bearer"})"}});
  PasswordAuthenticator auth(server.url(), "alice", "wrong");
  std::string m = AuthMessage([&] { auth.authenticate(); });
  EXPECT_EQ(m.rfind("pulsar-relay password authentication failed:", 0), 0u) << m;
  EXPECT_NE(m.find("401"), std::string::npos);
  EXPECT_NE(AuthMessage([&] { auth.authenticate(); }).find("access_token"), std::string::npos);
  PasswordAuthenticator down("http://127.0.0.1:" + std::to_string(testsupport::closed_port()), "a",
                             "b");
  EXPECT_EQ(AuthMessage([&] { down.authenticate(); }).rfind("pulsar-relay password", 0), 0u);
  try {
    down.authenticate();
  } catch (const AuthError& e) {
    EXPECT_TRUE(e.network());
    EXPECT_EQ(e.status(), std::nullopt);
  }
  try {
    auth.authenticate();  // the script repeats its last answer (no access_token)
  } catch (const AuthError& e) {
    EXPECT_FALSE(e.network());
  }
}

TEST(RefreshTokenAuthenticator, RotatesAndSavesBeforeReturning) {
  FakeHttpServer server;
  TempDir dir;
  auto file = std::make_shared<CredentialsFile>(dir.path() / "c.json");
  file->save({"x", "RT-1", utc_now_iso(), std::nullopt, std::nullopt});
  server.route("POST", "/auth/token/refresh", [&](const testsupport::Recorded& r) {
    EXPECT_EQ(r.body, R"({"refresh_token":"RT-1"})");
    EXPECT_EQ(r.header("content-type"), "application/json");
    return Reply{200, TokenBody("AT-2", 600, "RT-2")};
  });
  RefreshTokenAuthenticator auth(server.url(), file);
  AccessToken t = auth.authenticate();
  EXPECT_EQ(t.token, "AT-2");
  EXPECT_EQ(t.expires_in, 600s);
  EXPECT_EQ(file->load()->refresh_token, "RT-2");
  EXPECT_EQ(file->load()->relay_url, server.url());
}

TEST(RefreshTokenAuthenticator, RejectionLeavesTheStoreUntouched) {
  FakeHttpServer server;
  server.script("POST", "/auth/token/refresh",
                {Reply{401, R"({"detail":"invalid refresh token"})"}, Reply{500, "{}"}});
  TempDir dir;
  auto file = std::make_shared<CredentialsFile>(dir.path() / "c.json");
  file->save({"x", "RT-1", "2026-01-01T00:00:00+00:00", std::nullopt, std::nullopt});
  const auto before = file->load();
  RefreshTokenAuthenticator auth(server.url(), file);
  try {
    auth.authenticate();
    ADD_FAILURE();
  } catch (const AuthError& e) {
    EXPECT_NE(std::string(e.what()).find("rejected"), std::string::npos);
    EXPECT_EQ(e.status(), 401);
  }
  EXPECT_EQ(file->load(), before);
  EXPECT_NE(AuthMessage([&] { auth.authenticate(); }).find("refresh failed: HTTP 500"),
            std::string::npos);
}

TEST(RefreshTokenAuthenticator, MissingFileSaysNoRefreshToken) {
  FakeHttpServer server;
  TempDir dir;
  auto file = std::make_shared<CredentialsFile>(dir.path() / "missing.json");
  RefreshTokenAuthenticator auth(server.url(), file);
  const std::string m = AuthMessage([&] { auth.authenticate(); });
  EXPECT_NE(m.find("No refresh token at " + file->label()), std::string::npos) << m;
  EXPECT_EQ(server.requests().size(), 0u);
}

TEST(AuthManagerSelection, FollowsTheSpecOrder) {
  FakeHttpServer server;
  TempDir dir;
  const fs::path path = dir.path() / "c.json";
  // Username and password only.
  EXPECT_EQ(make_auth_manager(server.url(), {"u", "p"})->strategy_name(), "password");
  // Empty strings count as given.
  EXPECT_EQ(make_auth_manager(server.url(), {"", ""})->strategy_name(), "password");
  // A missing file plus username/password: password (capturing into that file).
  AuthConfig missing{"u", "p", path};
  EXPECT_EQ(make_auth_manager(server.url(), missing)->strategy_name(), "password");
  // An existing file wins over username/password.
  CredentialsFile(path).save({"x", "RT", utc_now_iso(), std::nullopt, std::nullopt});
  EXPECT_EQ(make_auth_manager(server.url(), missing)->strategy_name(), "refresh_token");
  // An explicit store is used as is (and wins over a file path).
  AuthConfig explicit_store;
  explicit_store.credentials_store = std::make_shared<InMemoryCredentialsStore>(server.url(), "RT");
  explicit_store.credentials_file = dir.path() / "other.json";
  EXPECT_EQ(make_auth_manager(server.url(), explicit_store)->strategy_name(), "refresh_token");
  // Nothing configured.
  EXPECT_THROW(make_auth_manager(server.url(), {}), std::invalid_argument);
  EXPECT_THROW(make_auth_manager(server.url(), {"u", std::nullopt}), std::invalid_argument);
}

TEST(AuthManager, PasswordStrategyCapturesIntoAMissingFile) {
  FakeHttpServer server;
  server.script("POST", "/auth/login", {Reply{200, TokenBody("AT", 600, "RT-9")}});
  TempDir dir;
  auto manager = make_auth_manager(server.url(), {"u", "p", dir.path() / "c.json"});
  EXPECT_EQ(manager->get_token(), "AT");
  EXPECT_EQ(CredentialsFile(dir.path() / "c.json").load()->refresh_token, "RT-9");
  // The choice is made once: the manager keeps logging in with the password.
  manager->invalidate();
  EXPECT_EQ(manager->get_token(), "AT");
  EXPECT_EQ(server.count("POST", "/auth/login"), 2u);
}

TEST(AuthManager, InMemoryRotationFiresTheCallbackOnce) {
  FakeHttpServer server;
  server.script("POST", "/auth/token/refresh", {Reply{200, TokenBody("AT", 600, "RT-2")}});
  std::vector<std::string> saved;
  auto store = std::make_shared<InMemoryCredentialsStore>(
      server.url(), "RT-1", [&](const Credentials& c) { saved.push_back(*c.refresh_token); },
      "<in-memory:test>");
  AuthConfig config;
  config.credentials_store = store;
  auto manager = make_auth_manager(server.url(), config);
  EXPECT_EQ(manager->get_token(), "AT");
  EXPECT_EQ(saved, std::vector<std::string>{"RT-2"});
  EXPECT_EQ(store->load()->refresh_token, "RT-2");
}

TEST(AuthManager, ThrowingVaultCallbackDoesNotFailTheRequest) {
  FakeHttpServer server;
  server.script("POST", "/auth/token/refresh", {Reply{200, TokenBody("AT", 600, "RT-2")}});
  AuthConfig config;
  config.credentials_store = std::make_shared<InMemoryCredentialsStore>(
      server.url(), "RT-1", [](const Credentials&) { throw std::runtime_error("vault down"); });
  auto manager = make_auth_manager(server.url(), config);
  EXPECT_EQ(manager->get_token(), "AT");
  EXPECT_EQ(config.credentials_store->load()->refresh_token, "RT-2");
}

TEST(AuthManager, ReusesATokenWithMoreThan300SecondsLeft) {
  FakeHttpServer server;
  server.script("POST", "/auth/login",
                {Reply{200, TokenBody("AT-1", 3600, std::nullopt)},
                 Reply{200, TokenBody("AT-2", 3600, std::nullopt)}});
  ManualSteady clock;
  AuthManager manager(server.url(), std::make_unique<PasswordAuthenticator>(server.url(), "u", "p"),
                      {RefreshMargin::kFixed300s, clock.fn()});
  EXPECT_EQ(manager.get_token(), "AT-1");
  clock.advance(3299s);  // 301 s left
  EXPECT_EQ(manager.get_token(), "AT-1");
  EXPECT_EQ(server.count("POST", "/auth/login"), 1u);
  clock.advance(1s);  // 300 s left: refresh
  EXPECT_EQ(manager.get_token(), "AT-2");
  EXPECT_EQ(server.count("POST", "/auth/login"), 2u);
  manager.invalidate();
  EXPECT_EQ(manager.get_token(), "AT-2");
  EXPECT_EQ(server.count("POST", "/auth/login"), 3u);
}

TEST(AuthManager, AdaptiveMarginCachesShortLivedTokens) {
  FakeHttpServer server;
  server.script("POST", "/auth/login", {Reply{200, TokenBody("AT", 120, std::nullopt)}});
  ManualSteady clock;
  // Python's fixed 300 s margin: a 120 s token is never reused.
  AuthManager fixed(server.url(), std::make_unique<PasswordAuthenticator>(server.url(), "u", "p"),
                    {RefreshMargin::kFixed300s, clock.fn()});
  fixed.get_token();
  fixed.get_token();
  EXPECT_EQ(server.count("POST", "/auth/login"), 2u);
  // Adaptive (default): min(300, 120 / 2) = 60 s margin.
  AuthManager adaptive(server.url(),
                       std::make_unique<PasswordAuthenticator>(server.url(), "u", "p"),
                       {RefreshMargin::kAdaptive, clock.fn()});
  adaptive.get_token();
  clock.advance(59s);
  adaptive.get_token();
  EXPECT_EQ(server.count("POST", "/auth/login"), 3u);
  clock.advance(1s);  // 60 s left
  adaptive.get_token();
  EXPECT_EQ(server.count("POST", "/auth/login"), 4u);
}

TEST(AuthManager, EightThreadsOnAnExpiredCacheMakeOneRefresh) {
  FakeHttpServer server;
  server.route("POST", "/auth/token/refresh", [](const testsupport::Recorded& r) {
    // Each call rotates: a second concurrent refresh would present a used token.
    static std::atomic<int> n{0};
    const int i = ++n;
    Reply reply{200, TokenBody("AT-" + std::to_string(i), 600, "RT-" + std::to_string(i + 1))};
    reply.delay = 200ms;
    EXPECT_NE(r.body.find("RT-"), std::string::npos);
    return reply;
  });
  TempDir dir;
  auto file = std::make_shared<CredentialsFile>(dir.path() / "c.json");
  file->save({"x", "RT-1", utc_now_iso(), std::nullopt, std::nullopt});
  AuthManager manager(server.url(),
                      std::make_unique<RefreshTokenAuthenticator>(server.url(), file));
  std::vector<std::thread> threads;
  std::vector<std::string> tokens(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] { tokens[i] = manager.get_token(); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(server.count("POST", "/auth/token/refresh"), 1u);
  for (const auto& t : tokens) EXPECT_EQ(t, tokens[0]);
  EXPECT_EQ(file->load()->refresh_token, "RT-2");
}

TEST(AuthManager, AFailingSaveDuringRefreshPropagates) {
  FakeHttpServer server;
  server.script("POST", "/auth/token/refresh", {Reply{200, TokenBody("AT", 600, "RT-2")}});
  // A store that loads fine and cannot save (an embedder's read-only vault; a file store throws
  // std::system_error the same way, see credentials_test).
  struct FailingStore : CredentialsStore {
    std::string label() const override { return "<failing>"; }
    bool exists() const override { return true; }
    std::optional<Credentials> load() const override {
      return Credentials{"x", "RT-1", "t", std::nullopt, std::nullopt};
    }
    void save(const Credentials&) override {
      throw std::system_error(EACCES, std::generic_category(), "read-only vault");
    }
  };
  AuthConfig config;
  config.credentials_store = std::make_shared<FailingStore>();
  auto manager = make_auth_manager(server.url(), config);
  EXPECT_THROW(manager->get_token(), std::system_error);
  EXPECT_EQ(manager->cached_token(), std::nullopt);
}

}  // namespace
}  // namespace magnetar::client
