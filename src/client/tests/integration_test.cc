// The client library against the real `magnetar serve` (spec clients.md §A.10.15): password
// login, publish, long-poll with a resumed cursor, bulk, topics, refresh rotation and replay,
// the WebSocket subscriber across disconnects and token revocation, and the async API.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <set>
#include <thread>

#include "client/auth.h"
#include "client/errors.h"
#include "client/http.h"
#include "client/subscriber.h"
#include "client/tests/support/process.h"
#include "client/topics.h"
#include "client/transport.h"
#include "client/url.h"
#include "common/message_id.h"

namespace magnetar::client {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using testsupport::MagnetarServer;
using testsupport::TempDir;

// One server for the tests that need no special options.
class Integration : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(testsupport::magnetar_binary())) return;
    server_ = new MagnetarServer("memory");
    server_->start();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!server_) GTEST_SKIP() << "no magnetar binary at " << testsupport::magnetar_binary();
  }
  AuthConfig Admin(std::optional<fs::path> file = std::nullopt) const {
    AuthConfig c;
    c.username = server_->admin_user();
    c.password = server_->admin_password();
    c.credentials_file = file;
    return c;
  }
  static std::string Topic(const std::string& prefix) {
    static int n = 0;
    return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
  }
  static MagnetarServer* server_;
};
MagnetarServer* Integration::server_ = nullptr;

std::string Str(const json::value& v) { return v.is_string() ? std::string(v.get_string()) : ""; }

std::vector<std::string> Ids(const std::vector<json::object>& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages) out.emplace_back(m.at("message_id").as_string());
  return out;
}

TEST_F(Integration, PublishPollAndResumeFromTheCursorFile) {
  TempDir dir;
  const std::string topic = Topic("jobs");
  TransportOptions o;
  o.cursor_path = dir.path() / "cursor.json";
  std::vector<std::string> published;
  {
    RelayTransport transport(server_->url(), Admin(dir.path() / "creds.json"), o);
    for (int i = 0; i < 3; ++i) {
      json::object r = transport.post_message(topic, {{"n", i}}, std::nullopt,
                                              std::map<std::string, std::string>{{"k", "v"}});
      published.emplace_back(r.at("message_id").as_string());
      EXPECT_EQ(Str(r.at("topic")), topic);
    }
    transport.set_last_message_id(topic, "0-0");  // from the oldest
    auto got = transport.long_poll(std::vector<std::string>{topic}, 5s);
    EXPECT_EQ(Ids(got), published);
    EXPECT_EQ(got.at(0).at("payload"), (json::object{{"n", 0}}));
    EXPECT_EQ(transport.last_message_id(topic), published.back());
  }
  // The password login captured a refresh token.
  EXPECT_TRUE(CredentialsFile(dir.path() / "creds.json").load()->refresh_token);
  // A new process: the cursor file says where it was; only the new message comes back.
  RelayTransport restarted(server_->url(), Admin(dir.path() / "creds.json"), o);
  EXPECT_EQ(restarted.last_message_id(topic), published.back());
  json::object r = restarted.post_message(topic, {{"n", 3}});
  auto got = restarted.long_poll(std::vector<std::string>{topic}, 5s);
  EXPECT_EQ(Ids(got), std::vector<std::string>{std::string(r.at("message_id").as_string())});
  // Nothing more: the poll times out empty.
  EXPECT_TRUE(restarted.long_poll(std::vector<std::string>{topic}, 1s).empty());
}

TEST_F(Integration, BulkAndItsRefusals) {
  const std::string topic = Topic("bulk");
  RelayTransport transport(server_->url(), Admin());
  json::array items;
  for (int i = 0; i < 3; ++i)
    items.push_back(json::object{{"topic", topic}, {"payload", {{"i", i}}}});
  json::object r = transport.post_bulk_messages(items);
  EXPECT_EQ(r.at("summary").at("accepted"), 3);
  // An invalid item fails the whole request with 422, which is not retried.
  items.push_back(json::object{{"topic", "bad topic!"}, {"payload", json::object{}}});
  try {
    transport.post_bulk_messages(items);
    ADD_FAILURE();
  } catch (const TransportError& e) {
    EXPECT_EQ(e.status(), 422);
    EXPECT_EQ(e.attempts(), 1);
  }
}

TEST_F(Integration, TopicsCreateVerifyFetchListDelete) {
  const std::string topic = Topic("topics");
  auto tokens = make_auth_manager(server_->url(), Admin());
  const std::string at = tokens->get_token();
  HttpRelayClient client(server_->url());
  EXPECT_TRUE(client.ensure_topic(at, topic, "made by the test"));
  client.create_or_verify_topic(at, topic);  // 400 "already exists", then the ownership check
  EXPECT_FALSE(client.ensure_topic(at, topic));
  RelayTransport transport(server_->url(), std::shared_ptr<TokenProvider>(std::move(tokens)));
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ids.emplace_back(transport.post_message(topic, {{"i", i}}).at("message_id").as_string());
  }
  json::object latest = client.fetch_messages(at, topic, {1, Order::desc, std::nullopt});
  EXPECT_EQ(Str(latest.at("messages").as_array().at(0).at("message_id")), ids.back());
  json::object after = client.fetch_messages(at, topic, {10, Order::asc, ids[0]});
  EXPECT_EQ(after.at("messages").as_array().size(), 2u);
  bool listed = false;
  for (const auto& t : client.list_topics(at)) listed |= Str(t.at("topic_name")) == topic;
  EXPECT_TRUE(listed);
  EXPECT_EQ(Str(client.whoami(at).at("username")), server_->admin_user());
  client.delete_topic(at, topic);
  try {
    client.fetch_messages(at, topic);
    ADD_FAILURE();
  } catch (const ClientError& e) {
    EXPECT_EQ(e.status(), 404);
  }
}

TEST_F(Integration, RefreshRotationIsPersistedAndAReplayRevokesTheChain) {
  TempDir dir;
  const fs::path a = dir.path() / "a.json";
  const fs::path b = dir.path() / "b.json";
  make_auth_manager(server_->url(), Admin(a))->get_token();  // login captures RT1 into a
  fs::copy_file(a, b);                                       // b keeps RT1
  const auto rt1 = CredentialsFile(a).load()->refresh_token;
  AuthConfig from_a;
  from_a.credentials_file = a;
  auto manager = make_auth_manager(server_->url(), from_a);
  EXPECT_EQ(manager->strategy_name(), "refresh_token");
  const std::string access = manager->get_token();
  const auto rt2 = CredentialsFile(a).load()->refresh_token;
  EXPECT_NE(rt1, rt2);  // rotated and saved
  EXPECT_EQ(Str(HttpRelayClient(server_->url()).whoami(access).at("username")),
            server_->admin_user());
  // Presenting RT1 again is a replay: refused, and the whole chain (RT2 too) is revoked.
  AuthConfig from_b;
  from_b.credentials_file = b;
  try {
    make_auth_manager(server_->url(), from_b)->get_token();
    ADD_FAILURE();
  } catch (const AuthError& e) {
    EXPECT_NE(std::string(e.what()).find("rejected"), std::string::npos);
  }
  EXPECT_EQ(CredentialsFile(b).load()->refresh_token, rt1);  // untouched by the refusal
  EXPECT_THROW(make_auth_manager(server_->url(), from_a)->get_token(), AuthError);
}

TEST_F(Integration, AsyncPublishAndPoll) {
  const std::string topic = Topic("async");
  RelayTransport transport(server_->url(), Admin());
  transport.set_last_message_id(topic, "0-0");
  boost::asio::io_context io;
  struct Run {
    static boost::asio::awaitable<std::size_t> Go(RelayTransport& t, std::string topic) {
      json::object payload;
      payload["async"] = true;
      co_await t.async_post_message(topic, std::move(payload));
      std::vector<std::string> topics;
      topics.push_back(topic);
      std::vector<json::object> got = co_await t.async_long_poll(std::move(topics), 5s);
      co_return got.size();
    }
  };
  auto future = boost::asio::co_spawn(io, Run::Go(transport, topic), boost::asio::use_future);
  io.run();
  EXPECT_EQ(future.get(), 1u);
}

// Publishes `count` messages, one every `gap`, from another thread.
class Publisher {
 public:
  Publisher(RelayTransport& t, std::string topic, int count, std::chrono::milliseconds gap)
      : thread_([&t, topic, count, gap, this] {
          for (int i = 0; i < count; ++i) {
            auto id = t.post_message(topic, {{"i", i}}).at("message_id").as_string();
            std::lock_guard lock(mutex_);
            ids_.emplace_back(id);
            std::this_thread::sleep_for(gap);
          }
        }) {}
  ~Publisher() { join(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> ids() {
    std::lock_guard lock(mutex_);
    return ids_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> ids_;
  std::thread thread_;
};

// Runs a subscriber on its own thread and collects what it delivers.
class Collector {
 public:
  Collector(std::string url, std::shared_ptr<TokenProvider> tokens, SubscriberOptions options)
      : subscriber_(std::move(url), std::move(tokens), std::move(options)), thread_([this] {
          try {
            subscriber_.run([this](const json::object& m) {
              std::lock_guard lock(mutex_);
              ids_.emplace_back(m.at("message_id").as_string());
            });
          } catch (const std::exception& e) {
            std::lock_guard lock(mutex_);
            error_ = e.what();
          }
        }) {}
  ~Collector() {
    subscriber_.stop();
    thread_.join();
  }
  std::vector<std::string> ids() {
    std::lock_guard lock(mutex_);
    return ids_;
  }
  std::string error() {
    std::lock_guard lock(mutex_);
    return error_;
  }
  bool wait_for(size_t n, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (ids().size() >= n) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

 private:
  RelaySubscriber subscriber_;
  std::mutex mutex_;
  std::vector<std::string> ids_;
  std::string error_;
  std::thread thread_;
};

std::atomic<int> g_events{0};

SubscriberOptions SubOptions(const std::string& topic, std::vector<std::string>* log,
                             std::mutex* log_mutex) {
  SubscriberOptions s;
  s.topics = {topic};
  s.reconnect_initial = 100ms;
  s.on_event = [log, log_mutex](const SubscriberEvent& e) {
    std::lock_guard lock(*log_mutex);
    log->push_back(std::to_string(static_cast<int>(e.kind)) + " " + e.detail);
  };
  return s;
}

TEST(IntegrationWs, SubscriberResumesAcrossDisconnectsWithoutGapsOrDuplicates) {
  if (!fs::exists(testsupport::magnetar_binary())) GTEST_SKIP() << "no magnetar binary";
  // The server closes a WebSocket after 5 s without client frames; the subscriber pings only
  // every 60 s here, so it is disconnected and must reconnect and resume.
  MagnetarServer server("memory", {"--ws-idle-seconds", "5"});
  server.start();
  AuthConfig admin;
  admin.username = server.admin_user();
  admin.password = server.admin_password();
  std::shared_ptr<TokenProvider> tokens = make_auth_manager(server.url(), admin);
  RelayTransport transport(server.url(), tokens);
  const std::string topic = "ws-resume";
  const std::string before =
      std::string(transport.post_message(topic, {{"old", true}}).at("message_id").as_string());
  std::vector<std::string> log;
  std::mutex log_mutex;
  SubscriberOptions s = SubOptions(topic, &log, &log_mutex);
  s.ping_interval = 60s;
  Collector collector(server.url(), tokens, s);
  // "last": nothing older than the subscription, even across a reconnect before the first message.
  std::this_thread::sleep_for(300ms);
  Publisher publisher(transport, topic, 70, 100ms);  // ~7 s: across the idle close at ~5 s
  publisher.join();
  ASSERT_TRUE(collector.wait_for(70, 10s)) << collector.ids().size() << " " << collector.error();
  std::this_thread::sleep_for(200ms);
  const std::vector<std::string> got = collector.ids();
  EXPECT_EQ(got, publisher.ids());
  EXPECT_EQ(std::count(got.begin(), got.end(), before), 0);
  std::lock_guard lock(log_mutex);
  const bool reconnected = std::any_of(log.begin(), log.end(),
                                       [](const std::string& l) { return l.rfind("1 ", 0) == 0; });
  EXPECT_TRUE(reconnected) << "the idle close did not happen";
}

TEST(IntegrationWs, A4001CloseRefreshesTheTokenAndResumes) {
  if (!fs::exists(testsupport::magnetar_binary())) GTEST_SKIP() << "no magnetar binary";
  MagnetarServer server("memory");
  server.start();
  AuthConfig admin;
  admin.username = server.admin_user();
  admin.password = server.admin_password();
  std::shared_ptr<TokenProvider> tokens = make_auth_manager(server.url(), admin);
  RelayTransport publisher_transport(server.url(), make_auth_manager(server.url(), admin));
  const std::string topic = "ws-4001";
  std::vector<std::string> log;
  std::mutex log_mutex;
  SubscriberOptions s = SubOptions(topic, &log, &log_mutex);
  s.offset = "first";
  const std::string first_token = tokens->get_token();
  Collector collector(server.url(), tokens, s);
  Publisher p1(publisher_transport, topic, 5, 10ms);
  p1.join();
  ASSERT_TRUE(collector.wait_for(5, 10s));
  // Log the subscriber's token out: the server closes its socket with 4001 within 5 s.
  detail::HttpRequest logout;
  logout.method = boost::beast::http::verb::post;
  logout.target = "/auth/logout";
  logout.headers = {{"Authorization", "Bearer " + first_token}};
  auto resp = detail::blocking_request(parse_relay_endpoint(server.url()), {}, logout, {5s, 5s});
  ASSERT_EQ(resp.status, 204) << resp.body;
  Publisher p2(publisher_transport, topic, 60, 100ms);  // ~6 s, across the 4001 close
  p2.join();
  ASSERT_TRUE(collector.wait_for(65, 10s)) << collector.error();
  std::vector<std::string> want = p1.ids();
  for (const auto& id : p2.ids()) want.push_back(id);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(collector.ids(), want);
  EXPECT_NE(tokens->get_token(), first_token);
  std::lock_guard lock(log_mutex);
  const bool closed_4001 = std::any_of(log.begin(), log.end(), [](const std::string& l) {
    return l.find("4001") != std::string::npos;
  });
  EXPECT_TRUE(closed_4001);
}

// A self-signed certificate for localhost and 127.0.0.1, made with the openssl command.
bool MakeCertificate(const fs::path& dir) {
  auto r = testsupport::run_command(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
       (dir / "server.key").string(), "-out", (dir / "server.crt").string(), "-days", "2", "-subj",
       "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"});
  return r.code == 0;
}

TEST(IntegrationTls, VerifiesTheCertificateByDefaultAndTrustsAGivenCa) {
  if (!fs::exists(testsupport::magnetar_binary())) GTEST_SKIP() << "no magnetar binary";
  if (!fs::exists("/usr/bin/openssl")) GTEST_SKIP() << "the openssl command makes the certificate";
  TempDir dir;
  ASSERT_TRUE(MakeCertificate(dir.path()));
  MagnetarServer server("memory", {"--tls-cert", (dir.path() / "server.crt").string(),
                                   "--tls-key", (dir.path() / "server.key").string()});
  server.start();
  ASSERT_EQ(server.url().rfind("https://", 0), 0u) << server.url();
  AuthConfig admin;
  admin.username = server.admin_user();
  admin.password = server.admin_password();
  // Not in the system's trust store: refused.
  try {
    make_auth_manager(server.url(), admin)->get_token();
    ADD_FAILURE() << "an untrusted certificate was accepted";
  } catch (const AuthError& e) {
    EXPECT_NE(std::string(e.what()).find("TLS"), std::string::npos) << e.what();
  }
  // Trusted through ca_file: HTTPS publish and poll, and the subscriber over WSS.
  TlsOptions tls;
  tls.ca_file = (dir.path() / "server.crt").string();
  admin.tls = tls;
  std::shared_ptr<TokenProvider> tokens = make_auth_manager(server.url(), admin);
  TransportOptions o;
  o.tls = tls;
  RelayTransport transport(server.url(), tokens, o);
  transport.set_last_message_id("secure", "0-0");
  const std::string id = Str(transport.post_message("secure", {{"tls", true}}).at("message_id"));
  EXPECT_EQ(Ids(transport.long_poll(std::vector<std::string>{"secure"}, 5s)),
            std::vector<std::string>{id});
  SubscriberOptions s;
  s.topics = {"secure"};
  s.offset = "first";
  s.tls = tls;
  Collector collector(server.url(), tokens, s);
  ASSERT_TRUE(collector.wait_for(1, 10s)) << collector.error();
  EXPECT_EQ(collector.ids(), std::vector<std::string>{id});
  // By its other name too.
  RelayTransport by_name("https://localhost:" + std::to_string(server.port()), tokens, o);
  EXPECT_NO_THROW(by_name.post_message("secure", {}));
}

TEST(IntegrationTls, ATrustedCertificateForAnotherNameIsRefused) {
  if (!fs::exists(testsupport::magnetar_binary())) GTEST_SKIP() << "no magnetar binary";
  if (!fs::exists("/usr/bin/openssl")) GTEST_SKIP() << "the openssl command makes the certificate";
  TempDir dir;
  auto r = testsupport::run_command(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
       (dir.path() / "other.key").string(), "-out", (dir.path() / "other.crt").string(), "-days",
       "2", "-subj", "/CN=other.example", "-addext", "subjectAltName=DNS:other.example"});
  ASSERT_EQ(r.code, 0) << r.err;
  MagnetarServer server("memory", {"--tls-cert", (dir.path() / "other.crt").string(),
                                   "--tls-key", (dir.path() / "other.key").string()});
  server.start();
  TlsOptions tls;
  tls.ca_file = (dir.path() / "other.crt").string();
  HttpRelayClient client(server.url(), 5s, tls);
  EXPECT_THROW(client.whoami("x"), ClientError);  // trusted issuer, wrong host name
  tls.verify = false;  // the explicit opt-out reaches the server (which then refuses the token)
  HttpRelayClient unverified(server.url(), 5s, tls);
  try {
    unverified.whoami("x");
    ADD_FAILURE();
  } catch (const ClientError& e) {
    EXPECT_EQ(e.status(), 401);
  }
}

}  // namespace
}  // namespace magnetar::client
