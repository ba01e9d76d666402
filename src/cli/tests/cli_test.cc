// The `magnetar` client commands, run as processes against the real server: help and exit codes,
// password login, whoami, topics, publish (one and JSON lines from stdin), poll (one-shot and
// --follow across a server restart on RocksDB), subscribe, logout, and the device-flow login
// approved through the HTTP approval endpoint.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "client/auth.h"
#include "client/credentials.h"
#include "client/errors.h"
#include "client/http.h"
#include "client/json_util.h"
#include "client/tests/support/fake_http_server.h"
#include "client/tests/support/process.h"
#include "client/url.h"

namespace magnetar::cli {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using client::testsupport::ChildProcess;
using client::testsupport::MagnetarServer;
using client::testsupport::RunResult;
using client::testsupport::TempDir;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// Runs `magnetar ARGS...` with a private config home and the given credentials file.
class Cli {
 public:
  Cli(const fs::path& home, fs::path credentials) : credentials_(std::move(credentials)) {
    env_["XDG_CONFIG_HOME"] = (home / "config").string();
    env_["HOME"] = home.string();
    for (const char* v : {"MAGNETAR_URL", "MAGNETAR_CREDENTIALS", "MAGNETAR_USERNAME",
                          "MAGNETAR_PASSWORD", "PULSAR_RELAY_ALLOW_INSECURE",
                          "MAGNETAR_PULSAR_URL", "MAGNETAR_TOKEN"}) {
      env_[v] = std::nullopt;
    }
  }
  std::vector<std::string> Argv(std::vector<std::string> args) const {
    std::vector<std::string> argv{client::testsupport::magnetar_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    if (args.size() >= 1 && args[0] != "--help" && args[0] != "help") {
      argv.push_back("--credentials");
      argv.push_back(credentials_.string());
    }
    return argv;
  }
  RunResult Run(std::vector<std::string> args, std::string stdin_data = {}) const {
    return client::testsupport::run_command(Argv(std::move(args)), env_, std::move(stdin_data),
                                            60s);
  }
  std::unique_ptr<ChildProcess> Start(std::vector<std::string> args) const {
    return std::make_unique<ChildProcess>(Argv(std::move(args)), env_, std::nullopt);
  }
  const fs::path& credentials() const { return credentials_; }
  std::map<std::string, std::optional<std::string>>& env() { return env_; }

 private:
  fs::path credentials_;
  std::map<std::string, std::optional<std::string>> env_;
};

std::string Str(const json::value& v) { return v.is_string() ? std::string(v.get_string()) : ""; }

bool HaveBinary() { return fs::exists(client::testsupport::magnetar_binary()); }

TEST(CliHelp, TopLevelAndPerCommandHelp) {
  if (!HaveBinary()) GTEST_SKIP() << "no magnetar binary";
  TempDir home;
  Cli cli(home.path(), home.path() / "c.json");
  RunResult top = cli.Run({"--help"});
  EXPECT_EQ(top.code, 0);
  for (const char* cmd : {"serve", "login", "logout", "whoami", "topics", "publish", "poll",
                          "subscribe", "Exit codes"}) {
    EXPECT_NE(top.out.find(cmd), std::string::npos) << cmd;
  }
  for (std::vector<std::string> args : {std::vector<std::string>{"login", "--help"},
                                        {"publish", "--help"},
                                        {"poll", "--help"},
                                        {"subscribe", "--help"},
                                        {"topics", "create", "--help"},
                                        {"logout", "--help"},
                                        {"whoami", "--help"},
                                        {"help", "poll"}}) {
    RunResult r = cli.Run(args);
    EXPECT_EQ(r.code, 0) << args[0] << ": " << r.err;
    EXPECT_NE(r.out.find("--url"), std::string::npos) << args[0];
  }
  EXPECT_EQ(cli.Run({}).code, 2);  // no command at all
  RunResult missing = cli.Run({"publish", "--url", "http://127.0.0.1:1"});
  EXPECT_EQ(missing.code, 2) << missing.err;
  RunResult bad_json = cli.Run({"publish", "--url", "http://127.0.0.1:1", "t", "[1]"});
  EXPECT_EQ(bad_json.code, 2);
  EXPECT_NE(bad_json.err.find("JSON object"), std::string::npos) << bad_json.err;
  RunResult bad_url = cli.Run({"whoami", "--url", "http://relay.example"});
  EXPECT_EQ(bad_url.code, 2);
  EXPECT_NE(bad_url.err.find("plaintext"), std::string::npos);
  // An unreachable relay is a failure (1), not an authentication problem (3).
  const std::string nowhere =
      "http://127.0.0.1:" + std::to_string(client::testsupport::closed_port());
  RunResult down = cli.Run({"login", "--url", nowhere, "--username", "u", "--password", "p"});
  EXPECT_EQ(down.code, 1) << down.err;
  // `serve --help` is still the server's.
  RunResult serve =
      client::testsupport::run_command({client::testsupport::magnetar_binary(), "serve", "--help"});
  EXPECT_EQ(serve.code, 0);
  EXPECT_NE(serve.out.find("--storage"), std::string::npos);
}

class CliAgainstServer : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveBinary()) GTEST_SKIP() << "no magnetar binary";
  }
  RunResult Login(Cli& cli, MagnetarServer& server) {
    return cli.Run({"login", "--url", server.url(), "--username", server.admin_user(), "--password",
                    server.admin_password()});
  }
};

TEST_F(CliAgainstServer, LoginTopicsPublishPollLogout) {
  MagnetarServer server("memory");
  server.start();
  TempDir home;
  Cli cli(home.path(), home.path() / "creds" / "relay_credentials.json");

  RunResult not_yet = cli.Run({"whoami", "--url", server.url()});
  EXPECT_EQ(not_yet.code, 3) << not_yet.err;
  EXPECT_NE(not_yet.err.find("magnetar login"), std::string::npos);

  RunResult wrong = cli.Run(
      {"login", "--url", server.url(), "--username", "admin", "--password", "wrong-password"});
  EXPECT_EQ(wrong.code, 3) << wrong.err;

  RunResult login = Login(cli, server);
  ASSERT_EQ(login.code, 0) << login.err;
  EXPECT_NE(login.out.find("as admin"), std::string::npos) << login.out;
  struct stat st {};
  ASSERT_EQ(::stat(cli.credentials().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto creds = client::CredentialsFile(cli.credentials()).load();
  ASSERT_TRUE(creds && creds->refresh_token);
  EXPECT_EQ(creds->relay_url, server.url());

  // --url defaults to the URL stored at login from here on.
  RunResult who = cli.Run({"whoami", "--json"});
  ASSERT_EQ(who.code, 0) << who.err;
  EXPECT_EQ(json::parse(who.out).at("username"), "admin");

  EXPECT_EQ(cli.Run({"topics", "create", "jobs", "--description", "work"}).code, 0);
  RunResult again = cli.Run({"topics", "create", "jobs", "--json"});
  EXPECT_EQ(again.code, 0);
  EXPECT_EQ(json::parse(again.out).at("created"), false);
  RunResult list = cli.Run({"topics", "list", "--json"});
  ASSERT_EQ(list.code, 0);
  EXPECT_EQ(json::parse(list.out).as_array().at(0).at("topic_name"), "jobs");
  EXPECT_NE(cli.Run({"topics", "list"}).out.find("work"), std::string::npos);

  RunResult one = cli.Run({"publish", "jobs", R"({"n":0})", "--json", "--metadata", "k=v"});
  ASSERT_EQ(one.code, 0) << one.err;
  const std::string first_id(json::parse(one.out).at("message_id").as_string());

  // 150 JSON lines from stdin: two bulk requests (100 + 50).
  std::string input;
  for (int i = 1; i <= 150; ++i) input += "{\"n\":" + std::to_string(i) + "}\n";
  input += "\n";  // blank lines are skipped
  RunResult bulk = cli.Run({"publish", "jobs", "-"}, input);
  ASSERT_EQ(bulk.code, 0) << bulk.err;
  EXPECT_NE(bulk.out.find("published 150 message(s) to jobs"), std::string::npos) << bulk.out;

  RunResult bad_line = cli.Run({"publish", "jobs", "-"}, "{\"ok\":1}\nnot json\n{\"never\":1}\n");
  EXPECT_EQ(bad_line.code, 2);
  EXPECT_NE(bad_line.err.find("stdin line 2"), std::string::npos) << bad_line.err;

  // Everything since the start, as JSON lines.
  const fs::path cursor = home.path() / "cursor.json";
  RunResult polled = cli.Run({"poll", "jobs", "--since", "0-0", "--json", "--timeout", "2",
                              "--cursor-file", cursor.string()});
  ASSERT_EQ(polled.code, 0) << polled.err;
  auto lines = Lines(polled.out);
  ASSERT_EQ(lines.size(), 100u);  // the relay returns at most 100 per topic and poll
  EXPECT_EQ(Str(json::parse(lines[0]).at("message_id")), first_id);
  EXPECT_EQ(json::parse(lines[0]).at("metadata").at("k"), "v");
  // The rest comes from the cursor file.
  RunResult rest = cli.Run({"poll", "jobs", "--timeout", "2", "--cursor-file", cursor.string()});
  ASSERT_EQ(rest.code, 0) << rest.err;
  auto rest_lines = Lines(rest.out);
  ASSERT_EQ(rest_lines.size(), 52u);  // 151 + the line before the bad one - 100
  EXPECT_EQ(rest_lines.back().rfind("jobs ", 0), 0u);
  EXPECT_NE(rest_lines.back().find("{\"ok\":1}"), std::string::npos);
  // Nothing new: the poll waits its timeout and prints nothing.
  RunResult none = cli.Run({"poll", "jobs", "--timeout", "1", "--cursor-file", cursor.string()});
  EXPECT_EQ(none.code, 0);
  EXPECT_TRUE(none.out.empty()) << none.out;

  EXPECT_EQ(cli.Run({"topics", "delete", "jobs"}).code, 0);
  EXPECT_EQ(cli.Run({"topics", "delete", "jobs"}).code, 1);

  RunResult logout = cli.Run({"logout"});
  EXPECT_EQ(logout.code, 0) << logout.err;
  EXPECT_FALSE(fs::exists(cli.credentials()));
  // The refresh token was revoked on the relay, not just deleted here.
  client::AuthConfig old;
  old.credentials_store =
      std::make_shared<client::InMemoryCredentialsStore>(server.url(), *creds->refresh_token);
  EXPECT_THROW(client::make_auth_manager(server.url(), old)->get_token(), client::AuthError);
  EXPECT_EQ(cli.Run({"whoami", "--url", server.url()}).code, 3);
  EXPECT_EQ(cli.Run({"logout"}).code, 0);  // idempotent
}

TEST_F(CliAgainstServer, EnvironmentPasswordWithoutLogin) {
  MagnetarServer server("memory");
  server.start();
  TempDir home;
  Cli cli(home.path(), home.path() / "c.json");
  cli.env()["MAGNETAR_URL"] = server.url();
  cli.env()["MAGNETAR_USERNAME"] = server.admin_user();
  cli.env()["MAGNETAR_PASSWORD"] = server.admin_password();
  RunResult r = cli.Run({"publish", "env-topic", "{}"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(cli.credentials()));  // the login's refresh token was captured
}

TEST_F(CliAgainstServer, PollFollowRidesOutARestartWithoutLossOrRepeats) {
  MagnetarServer server("rocksdb");
  server.start();
  TempDir home;
  Cli cli(home.path(), home.path() / "c.json");
  ASSERT_EQ(Login(cli, server).code, 0);
  const fs::path cursor = home.path() / "cursor.json";
  auto follower = cli.Start({"poll", "--follow", "--json", "--timeout", "2", "--since", "0-0",
                             "--cursor-file", cursor.string(), "restart"});
  std::vector<std::string> published;
  auto publish = [&](int n) {
    RunResult r = cli.Run({"publish", "restart", "{\"n\":" + std::to_string(n) + "}", "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    published.emplace_back(json::parse(r.out).at("message_id").as_string());
  };
  auto seen = [&](size_t n) {
    return follower->wait_for(
        [n](const std::string& out, const std::string&) { return Lines(out).size() >= n; }, 20s);
  };
  for (int i = 0; i < 5; ++i) publish(i);
  ASSERT_TRUE(seen(5)) << follower->out() << follower->err();
  server.restart();  // same port, same data directory
  for (int i = 5; i < 10; ++i) publish(i);
  ASSERT_TRUE(seen(10)) << follower->out() << follower->err();
  std::this_thread::sleep_for(500ms);
  follower->signal(SIGINT);
  ASSERT_EQ(follower->wait(10s), 0) << follower->err();
  std::vector<std::string> got;
  for (const auto& line : Lines(follower->out())) {
    got.emplace_back(json::parse(line).at("message_id").as_string());
  }
  EXPECT_EQ(got, published);  // all of them, once each, in order
  EXPECT_NE(follower->err().find("retrying"), std::string::npos) << follower->err();
  // The cursor file holds the last one.
  std::ifstream cursor_in(cursor);
  const std::string cursor_text((std::istreambuf_iterator<char>(cursor_in)), {});
  EXPECT_EQ(Str(json::parse(cursor_text).at("restart")), published.back());
}

TEST_F(CliAgainstServer, SubscribePrintsMessagesAsTheyArrive) {
  MagnetarServer server("memory");
  server.start();
  TempDir home;
  Cli cli(home.path(), home.path() / "c.json");
  ASSERT_EQ(Login(cli, server).code, 0);
  auto sub = cli.Start({"subscribe", "--json", "-n", "3", "live"});
  ASSERT_TRUE(sub->wait_for(
      [](const std::string&, const std::string& err) {
        return err.find("subscribed") != std::string::npos;
      },
      15s))
      << sub->err();
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    RunResult r = cli.Run({"publish", "live", "{\"i\":" + std::to_string(i) + "}", "--json"});
    ASSERT_EQ(r.code, 0);
    ids.emplace_back(json::parse(r.out).at("message_id").as_string());
  }
  ASSERT_EQ(sub->wait(15s), 0) << sub->err();
  std::vector<std::string> got;
  for (const auto& line : Lines(sub->out()))
    got.emplace_back(json::parse(line).at("message_id").as_string());
  EXPECT_EQ(got, ids);
}

// `magnetar eftl ...` with the stored login (the access token is the eFTL password).
TEST_F(CliAgainstServer, EftlPublishSubscribeRequestAndKv) {
  MagnetarServer server("memory");
  server.start();
  TempDir home;
  Cli cli(home.path(), home.path() / "c.json");
  ASSERT_EQ(Login(cli, server).code, 0);
  const std::string url = server.eftl_url("clichan");
  auto sub = cli.Start({"eftl", "subscribe", "--eftl-url", url, "--matcher", R"({"kind":"a"})",
                        "--ack", "client", "--json", "-n", "2"});
  ASSERT_TRUE(sub->wait_for(
      [](const std::string&, const std::string& err) {
        return err.find("subscribed") != std::string::npos;
      },
      15s))
      << sub->err();
  for (const char* m : {R"({"kind":"a","n":1})", R"({"kind":"b","n":2})",
                        R"({"kind":"a","n":3,"d":{"_d_":1.5}})"}) {
    RunResult r = cli.Run({"eftl", "publish", "--eftl-url", url, m});
    ASSERT_EQ(r.code, 0) << r.err;
  }
  ASSERT_EQ(sub->wait(15s), 0) << sub->err();
  std::vector<std::int64_t> got;
  for (const auto& line : Lines(sub->out())) {
    json::value v = json::parse(line);
    got.push_back(v.at("body").at("n").as_int64());
  }
  EXPECT_EQ(got, (std::vector<std::int64_t>{1, 3}));
  EXPECT_NE(sub->out().find(R"("d":{"_d_":1.5})"), std::string::npos) << sub->out();

  // A message that is not an eFTL message is a usage error; nobody to answer a request is 1.
  EXPECT_EQ(cli.Run({"eftl", "publish", "--eftl-url", url, R"({"b":true})"}).code, 2);
  RunResult nobody = cli.Run({"eftl", "request", "--eftl-url", url, R"({"q":1})"});
  EXPECT_EQ(nobody.code, 1) << nobody.err;

  RunResult set = cli.Run({"eftl", "kv", "--eftl-url", url, "set", "m", "k", R"({"v":7})"});
  ASSERT_EQ(set.code, 0) << set.err;
  RunResult get = cli.Run({"eftl", "kv", "--eftl-url", url, "get", "m", "k"});
  ASSERT_EQ(get.code, 0) << get.err;
  EXPECT_EQ(Lines(get.out).at(0), R"({"v":7})");
  EXPECT_EQ(cli.Run({"eftl", "kv", "--eftl-url", url, "remove", "m", "k"}).code, 0);
  EXPECT_EQ(cli.Run({"eftl", "kv", "--eftl-url", url, "get", "m", "k"}).code, 1);

  // Refused credentials in the URL: exit 3.
  const std::string bad = "ws://admin:wrong@127.0.0.1:" + std::to_string(server.eftl_port()) + "/c";
  EXPECT_EQ(cli.Run({"eftl", "publish", "--eftl-url", bad, R"({"n":1})"}).code, 3);
}

// POST /auth/device/approve as the admin (the relay's HTTP approval endpoint).
int Approve(MagnetarServer& server, const std::string& user_code) {
  client::AuthConfig admin;
  admin.username = server.admin_user();
  admin.password = server.admin_password();
  const std::string token = client::make_auth_manager(server.url(), admin)->get_token();
  client::detail::HttpRequest req;
  req.method = boost::beast::http::verb::post;
  req.target = "/auth/device/approve";
  req.content_type = "application/x-www-form-urlencoded";
  req.body = client::detail::form_encode({{"user_code", user_code}});
  req.headers = {{"Authorization", "Bearer " + token}};
  return client::detail::blocking_request(client::parse_relay_endpoint(server.url()), {}, req,
                                          {5s, 5s})
      .status;
}

// Whether the server offers the device flow (the routes may be absent or switched off).
std::optional<std::string> DeviceFlowUnavailable(MagnetarServer& server) {
  client::detail::HttpRequest req;
  req.method = boost::beast::http::verb::post;
  req.target = "/auth/device/code";
  req.content_type = "application/x-www-form-urlencoded";
  req.body = "client_hint=probe";
  auto resp = client::detail::blocking_request(client::parse_relay_endpoint(server.url()), {}, req,
                                               {5s, 5s});
  if (resp.status == 200) return std::nullopt;
  return "POST /auth/device/code answered HTTP " + std::to_string(resp.status) + " " + resp.body;
}

TEST_F(CliAgainstServer, DeviceLoginApprovedOverHttpAndPairedTokensAreIndependent) {
  MagnetarServer server("memory");
  server.start();
  if (auto why = DeviceFlowUnavailable(server)) {
    GTEST_SKIP() << "the server's device flow is not available yet: " << *why;
  }
  TempDir home;
  Cli cli(home.path(), home.path() / "device.json");
  auto login = cli.Start({"login", "--device", "--pair", "--json", "--url", server.url(),
                          "--client-hint", "cli-test"});
  std::smatch m;
  const std::regex code_line(R"(Code:\s+(\S+))");
  ASSERT_TRUE(
      login->wait_for([&](const std::string&,
                          const std::string& err) { return std::regex_search(err, m, code_line); },
                      15s))
      << login->err();
  const std::string err = login->err();
  std::regex_search(err, m, code_line);
  EXPECT_NE(err.find("Visit:  " + server.url() + "/auth/device?user_code=" + m[1].str()),
            std::string::npos)
      << err;
  EXPECT_NE(err.find(std::string(64, '=')), std::string::npos);
  ASSERT_EQ(Approve(server, m[1].str()), 200);
  ASSERT_EQ(login->wait(30s), 0) << login->err();
  json::object summary = json::parse(login->out()).as_object();
  ASSERT_TRUE(summary.contains("refresh_token_secondary")) << login->out();
  const std::string secondary(summary.at("refresh_token_secondary").as_string());

  auto creds = client::CredentialsFile(cli.credentials()).load();
  ASSERT_TRUE(creds && creds->refresh_token && creds->access_token);
  std::ifstream in(cli.credentials());
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}).find(secondary), std::string::npos);
  RunResult who = cli.Run({"whoami", "--json"});
  ASSERT_EQ(who.code, 0) << who.err;
  EXPECT_EQ(Str(json::parse(who.out).at("username")), server.admin_user());

  // Revoking the primary (logout) leaves the secondary working: independent chains.
  ASSERT_EQ(cli.Run({"logout"}).code, 0);
  client::AuthConfig second;
  second.credentials_store =
      std::make_shared<client::InMemoryCredentialsStore>(server.url(), secondary);
  EXPECT_NO_THROW(client::make_auth_manager(server.url(), second)->get_token());
}

// `magnetar pulsar produce|consume` over the binary protocol, with the stored login.
TEST_F(CliAgainstServer, PulsarProduceAndConsume) {
  MagnetarServer server;
  server.start();
  ASSERT_NE(server.pulsar_port(), 0u);
  TempDir home;
  Cli cli(home.path(), home.path() / "c.json");
  ASSERT_EQ(Login(cli, server).code, 0);
  const std::string service = "pulsar://127.0.0.1:" + std::to_string(server.pulsar_port());
  RunResult produced = cli.Run({"pulsar", "produce", "--url", server.url(), "--service-url", service,
                                "clitopic", "--key", "k1", "--property", "a=b", "hello", "world"});
  ASSERT_EQ(produced.code, 0) << produced.err;
  const auto ids = Lines(produced.out);
  ASSERT_EQ(ids.size(), 2u) << produced.out;
  RunResult consumed =
      cli.Run({"pulsar", "consume", "--url", server.url(), "--service-url", service, "clitopic",
               "--subscription", "cli", "--position", "earliest", "-n", "2", "--json"});
  ASSERT_EQ(consumed.code, 0) << consumed.err;
  const auto lines = Lines(consumed.out);
  ASSERT_EQ(lines.size(), 2u) << consumed.out;
  const auto first = json::parse(lines[0]).as_object();
  EXPECT_EQ(Str(first.at("payload")), "hello");
  EXPECT_EQ(Str(first.at("key")), "k1");
  EXPECT_EQ(Str(first.at("properties").as_object().at("a")), "b");
  EXPECT_EQ(Str(json::parse(lines[1]).as_object().at("payload")), "world");
  // Acknowledged: the subscription has nothing left; a bad token is an authentication failure.
  RunResult refused = cli.Run({"pulsar", "produce", "--url", server.url(), "--service-url", service,
                               "--token", "bogus", "clitopic", "x"});
  EXPECT_EQ(refused.code, 3) << refused.err;
  RunResult usage = cli.Run({"pulsar", "consume", "--url", server.url(), "--service-url", service,
                             "clitopic", "--subscription", "s", "--type", "fanout"});
  EXPECT_EQ(usage.code, 2) << usage.err;
}

TEST(CliDevice, AFailedDeviceLoginSaysLoginFailed) {
  if (!HaveBinary()) GTEST_SKIP() << "no magnetar binary";
  TempDir home;
  Cli cli(home.path(), home.path() / "device.json");
  const std::string nowhere =
      "http://127.0.0.1:" + std::to_string(client::testsupport::closed_port());
  RunResult r = cli.Run({"login", "--device", "--url", nowhere});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("Login failed: Failed to request device code"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(cli.credentials()));
}

}  // namespace
}  // namespace magnetar::cli
