// The C++ eFTL client against the real `magnetar serve` on its --eftl-port: publish/subscribe
// with matchers, durables (standard with client acks across a server restart on RocksDB, shared,
// last-value, close vs unsubscribe), stop/start, a dropped connection resumed with its id_token
// (through a TCP proxy the test cuts), request/reply, key-value maps, failover over a URL list
// whose first URL is dead, and refused credentials.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "client/eftl.h"
#include "client/tests/support/fake_http_server.h"
#include "client/tests/support/process.h"

namespace magnetar::client {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testsupport::MagnetarServer;

// Messages received by a handler (on the connection's thread), waited for by the test.
class Inbox {
 public:
  EftlMessageHandler handler() {
    return [this](const EftlMessage& m) { add(m); };
  }
  void add(const EftlMessage& m) {
    std::lock_guard lock(mutex_);
    got_.push_back(m);
    cv_.notify_all();
  }
  bool wait_for(size_t n, std::chrono::milliseconds timeout = 15s) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return got_.size() >= n; });
  }
  std::vector<EftlMessage> messages() {
    std::lock_guard lock(mutex_);
    return got_;
  }
  std::vector<int64_t> numbers(const std::string& field = "n") {
    std::vector<int64_t> out;
    for (const auto& m : messages()) out.push_back(m.get_long(field).value_or(-1));
    return out;
  }
  size_t size() {
    std::lock_guard lock(mutex_);
    return got_.size();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<EftlMessage> got_;
};

EftlMessage N(int64_t n) {
  EftlMessage m;
  m.set_long("n", n);
  return m;
}

// A TCP proxy in front of the eFTL port that the test can stall (server → client) and cut.
class Proxy {
 public:
  explicit Proxy(uint16_t upstream) : upstream_(upstream) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 16) != 0) {
      throw std::runtime_error("proxy: cannot listen");
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~Proxy() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    ::close(listen_fd_);
    {
      std::lock_guard lock(mutex_);
      for (auto [client, server] : conns_) {
        ::shutdown(client, SHUT_RDWR);
        ::shutdown(server, SHUT_RDWR);
      }
    }
    for (auto& t : pumps_) t.join();
    for (auto [client, server] : conns_) {
      ::close(client);
      ::close(server);
    }
  }
  uint16_t port() const { return port_; }
  // Holds back everything the server sends (it is lost if the connection is then cut).
  void pause_downstream(bool paused) { paused_ = paused; }
  // Cuts every connection: the server's side first (so the server has seen the end before the
  // client reconnects), then the client's.
  void drop_all() {
    std::vector<std::pair<int, int>> conns;
    {
      std::lock_guard lock(mutex_);
      conns = conns_;
    }
    for (auto [client, server] : conns) ::shutdown(server, SHUT_RDWR);
    std::this_thread::sleep_for(300ms);
    for (auto [client, server] : conns) ::shutdown(client, SHUT_RDWR);
  }
  int connections() {
    std::lock_guard lock(mutex_);
    return static_cast<int>(conns_.size());
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      const int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) return;
      const int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(upstream_);
      if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(server);
        ::close(client);
        continue;
      }
      std::lock_guard lock(mutex_);
      conns_.emplace_back(client, server);
      pumps_.emplace_back([this, client, server] { pump(client, server, false); });
      pumps_.emplace_back([this, client, server] { pump(server, client, true); });
    }
  }
  void pump(int from, int to, bool downstream) {
    char buf[16384];
    while (true) {
      const ssize_t n = ::read(from, buf, sizeof buf);
      if (n <= 0) break;
      while (downstream && paused_ && !stopping_) std::this_thread::sleep_for(5ms);
      ssize_t done = 0;
      while (done < n) {
        const ssize_t w = ::send(to, buf + done, static_cast<size_t>(n - done), MSG_NOSIGNAL);
        if (w <= 0) break;
        done += w;
      }
      if (done < n) break;
    }
    ::shutdown(to, SHUT_RDWR);
    ::shutdown(from, SHUT_RDWR);
  }

  uint16_t upstream_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> paused_{false};
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::vector<std::pair<int, int>> conns_;
  std::vector<std::thread> pumps_;
  std::thread acceptor_;
};

class Eftl : public ::testing::Test {
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
  static EftlOptions Options(const MagnetarServer& s) {
    EftlOptions o;
    o.username = s.admin_user();
    o.password = s.admin_password();
    o.auto_reconnect_base_delay = 200ms;
    o.auto_reconnect_max_delay = 2s;
    o.handshake_timeout = 5s;
    o.login_timeout = 10s;
    return o;
  }
  static EftlOptions Options() { return Options(*server_); }
  static std::string Channel(const std::string& prefix) {
    static int n = 0;
    return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
  }
  static MagnetarServer* server_;
};
MagnetarServer* Eftl::server_ = nullptr;

TEST_F(Eftl, PublishSubscribeWithMatchersAndTypedFields) {
  Inbox orders, fives, qty_no_type, all;  // before the connections: their handlers use them
  const std::string url = server_->eftl_url(Channel("pubsub"));
  std::vector<EftlState> states;
  std::mutex states_mutex;
  EftlOptions o = Options();
  o.on_state_change = [&](EftlState s) {
    std::lock_guard lock(states_mutex);
    states.push_back(s);
  };
  EftlConnection conn(url, o);
  EXPECT_TRUE(conn.is_connected());
  EXPECT_FALSE(conn.client_id().empty());  // assigned by the server
  conn.subscribe({.matcher = R"({"type":"order"})"}, orders.handler());
  conn.subscribe({.matcher = R"({"qty":5})"}, fives.handler());
  conn.subscribe({.matcher = R"({"qty":true,"type":false})"}, qty_no_type.handler());
  const std::string all_id = conn.subscribe({}, all.handler());

  EftlMessage nested;
  nested.set_string("city", "Oslo");
  const auto when = EftlMessage::TimePoint(1700000000123ms);
  EftlMessage m1;
  m1.set_long("i", 1).set_string("type", "order").set_long("qty", 5).set_double("price", 9.75)
      .set_datetime("at", when).set_opaque("blob", std::string("\0\x01", 2))
      .set_message("addr", nested).set_string_array("tags", {"a", "b"});
  conn.publish(m1);
  conn.publish(EftlMessage().set_long("i", 2).set_string("type", "quote").set_long("qty", 5));
  conn.publish(EftlMessage().set_long("i", 3).set_string("type", "order").set_string("qty", "5"));
  conn.publish(EftlMessage().set_long("i", 4).set_long("qty", 7));
  // Every subscription is on this connection: once the catch-all has the last message, the
  // others have had everything meant for them.
  ASSERT_TRUE(all.wait_for(4));
  EXPECT_EQ(all.numbers("i"), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(orders.numbers("i"), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(fives.numbers("i"), (std::vector<int64_t>{1, 2}));  // type-strict: "5" is no 5
  EXPECT_EQ(qty_no_type.numbers("i"), (std::vector<int64_t>{4}));

  const EftlMessage got = all.messages().front();
  EXPECT_EQ(got.to_json(), m1.to_json());
  EXPECT_EQ(got.get_double("price"), 9.75);
  EXPECT_EQ(got.get_datetime("at"), when);
  EXPECT_EQ(got.get_opaque("blob"), std::string("\0\x01", 2));
  EXPECT_EQ(got.get_message("addr")->get_string("city"), "Oslo");
  EXPECT_EQ(got.subscription_id(), all_id);
  int64_t last = 0;
  for (const auto& m : all.messages()) {
    EXPECT_GT(m.seq(), last);
    last = m.seq();
  }
  // A bad matcher is refused locally; one the server refuses raises its code.
  EXPECT_THROW(conn.subscribe({.matcher = "not json"}, all.handler()), std::invalid_argument);
  try {
    conn.subscribe({.matcher = R"({"x":1.5})"}, all.handler());
    ADD_FAILURE();
  } catch (const EftlError& e) {
    EXPECT_EQ(e.code(), EftlError::kSubscriptionInvalid) << e.what();
  }
  // Client-ack only calls.
  EXPECT_THROW(conn.acknowledge(got), std::invalid_argument);
  conn.disconnect();
  EXPECT_EQ(conn.state(), EftlState::kDisconnected);
  EXPECT_THROW(conn.publish(N(1)), EftlError);
  {
    std::lock_guard lock(states_mutex);
    EXPECT_EQ(states.front(), EftlState::kConnecting);
    EXPECT_EQ(states.back(), EftlState::kDisconnected);
  }
  // reconnect() re-sends the subscriptions.
  conn.reconnect();
  EXPECT_TRUE(conn.is_connected());
  conn.publish(EftlMessage().set_long("i", 5));
  ASSERT_TRUE(all.wait_for(5));
  EXPECT_EQ(all.numbers("i").back(), 5);
}

TEST_F(Eftl, CloseKeepsADurableUnsubscribeDeletesIt) {
  Inbox first, second, third;  // before the connections: their handlers use them
  const std::string url = server_->eftl_url(Channel("close"));
  EftlConnection conn(url, Options());
  EftlConnection pub(url, Options());
  const std::string id = conn.subscribe({.durable = "d-close"}, first.handler());
  pub.publish(N(1));
  ASSERT_TRUE(first.wait_for(1));
  conn.close_subscription(id);
  pub.publish(N(2));  // kept for the durable while nobody listens
  const std::string id2 = conn.subscribe({.durable = "d-close"}, second.handler());
  ASSERT_TRUE(second.wait_for(1));
  EXPECT_EQ(second.numbers(), (std::vector<int64_t>{2}));
  conn.unsubscribe(id2);
  pub.publish(N(3));  // the durable is gone: nobody keeps this
  conn.subscribe({.durable = "d-close"}, third.handler());  // a new durable starts at the end
  pub.publish(N(4));
  ASSERT_TRUE(third.wait_for(1));
  EXPECT_EQ(third.numbers(), (std::vector<int64_t>{4}));
  EXPECT_EQ(third.messages().front().delivery_count(), 1);
}

TEST_F(Eftl, StopAndStartASubscription) {
  Inbox inbox;  // before the connections: their handlers use it
  const std::string url = server_->eftl_url(Channel("stop"));
  EftlConnection conn(url, Options());
  EftlConnection pub(url, Options());
  const std::string id = conn.subscribe({}, inbox.handler());
  pub.publish(N(1));
  ASSERT_TRUE(inbox.wait_for(1));
  conn.stop_subscription(id);
  conn.kv_map("barrier").get("k");  // ops of one connection are handled in order
  pub.publish(N(2));                // dropped: the live subscription is stopped
  conn.start_subscription(id);
  conn.kv_map("barrier").get("k");
  pub.publish(N(3));
  ASSERT_TRUE(inbox.wait_for(2));
  EXPECT_EQ(inbox.numbers(), (std::vector<int64_t>{1, 3}));
}

TEST_F(Eftl, SharedAndLastValueDurables) {
  Inbox in_a, in_b, latest;  // before the connections: their handlers use them
  const std::string url = server_->eftl_url(Channel("kinds"));
  EftlConnection a(url, Options());
  EftlConnection b(url, Options());
  a.subscribe({.durable = "workers", .type = EftlDurableType::kShared}, in_a.handler());
  b.subscribe({.durable = "workers", .type = EftlDurableType::kShared}, in_b.handler());
  for (int i = 1; i <= 6; ++i) a.publish(N(i));
  for (int i = 0; i < 300 && in_a.size() + in_b.size() < 6; ++i) std::this_thread::sleep_for(20ms);
  std::vector<int64_t> both = in_a.numbers();
  for (int64_t n : in_b.numbers()) both.push_back(n);
  std::sort(both.begin(), both.end());
  EXPECT_EQ(both, (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));  // each to exactly one of them
  EXPECT_FALSE(in_a.messages().empty());
  EXPECT_FALSE(in_b.messages().empty());

  a.publish(EftlMessage().set_string("flight", "954").set_string("status", "boarding"));
  a.publish(EftlMessage().set_string("flight", "954").set_string("status", "departed"));
  a.publish(EftlMessage().set_string("flight", "100").set_string("status", "late"));
  b.subscribe({.matcher = R"({"flight":"954"})",
               .durable = "flights",
               .type = EftlDurableType::kLastValue,
               .key = "flight"},
              latest.handler());
  ASSERT_TRUE(latest.wait_for(1));  // the newest for that key, at once
  EXPECT_EQ(latest.messages().front().get_string("status"), "departed");
  EXPECT_THROW(b.subscribe({.durable = "x", .key = "flight"}, latest.handler()),
               std::invalid_argument);
}

TEST_F(Eftl, RequestReply) {
  const std::string url = server_->eftl_url(Channel("rr"));
  EftlConnection responder(url, Options());
  EftlConnection requester(url, Options());
  EftlConnection* r = &responder;
  responder.subscribe({.matcher = R"({"service":"echo"})"}, [r](const EftlMessage& m) {
    if (!m.is_request()) return;
    EftlMessage reply;
    reply.set_string("echo", m.get_string("text").value_or("?"));
    r->send_reply_async(m, reply);  // on the I/O thread: the async form
  });
  responder.subscribe({.matcher = R"({"service":"silent"})"}, [](const EftlMessage&) {});
  EftlMessage req;
  req.set_string("service", "echo").set_string("text", "hi");
  const EftlMessage reply = requester.send_request(req, 5s);
  EXPECT_EQ(reply.get_string("echo"), "hi");
  try {
    requester.send_request(EftlMessage().set_string("service", "nobody"), 5s);
    ADD_FAILURE();
  } catch (const EftlError& e) {
    EXPECT_EQ(e.code(), EftlError::kRequestFailed) << e.what();
  }
  try {
    requester.send_request(EftlMessage().set_string("service", "silent"), 300ms);
    ADD_FAILURE();
  } catch (const EftlError& e) {
    EXPECT_EQ(e.code(), EftlError::kRequestTimeout) << e.what();
  }
  EXPECT_THROW(requester.send_reply(req, reply), std::invalid_argument);  // not a received request
}

TEST_F(Eftl, KeyValueMaps) {
  EftlConnection conn(server_->eftl_url(Channel("kv")), Options());
  EftlKvMap map = conn.kv_map("prices");
  EXPECT_FALSE(map.get("acme").has_value());
  map.set("acme", EftlMessage().set_double("price", 12.5).set_string("ccy", "EUR"));
  auto got = map.get("acme");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->get_double("price"), 12.5);
  map.set("acme", EftlMessage().set_double("price", 13.0));
  EXPECT_EQ(map.get("acme")->get_double("price"), 13.0);
  EXPECT_FALSE(map.get("acme")->is_set("ccy"));
  map.remove("acme");
  EXPECT_FALSE(map.get("acme").has_value());
  map.set("x", N(1));
  conn.remove_kv_map("prices");
  EXPECT_FALSE(map.get("x").has_value());
  // Asynchronous form.
  std::promise<EftlResult> done;
  map.set_async("y", N(2), [&](const EftlResult& r) { done.set_value(r); });
  EXPECT_TRUE(done.get_future().get().ok());
  // Over the welcome's max_size (1 MiB by default): refused before anything is sent.
  const EftlMessage big = EftlMessage().set_opaque("big", std::string(2 << 20, 'x'));
  EXPECT_THROW(map.set("big", big), EftlMessageTooLarge);
  EXPECT_THROW(conn.publish(big), EftlMessageTooLarge);
  EXPECT_TRUE(conn.is_connected());
}

TEST_F(Eftl, FailoverToTheSecondUrlWhenTheFirstIsDead) {
  Inbox inbox;  // before the connections: their handlers use it
  const std::string channel = Channel("failover");
  const std::string dead = "ws://127.0.0.1:" + std::to_string(testsupport::closed_port()) + "/" + channel;
  EftlOptions o = Options();
  o.shuffle_urls = false;  // the dead one first, for sure
  EftlConnection conn(dead + " | " + server_->eftl_url(channel), o);
  EXPECT_EQ(conn.url(), server_->eftl_url(channel));
  conn.subscribe({}, inbox.handler());
  conn.publish(N(7));
  ASSERT_TRUE(inbox.wait_for(1));
  // Shuffled, the list still connects (whichever comes first).
  EftlConnection shuffled(dead + "|" + server_->eftl_url(channel), Options());
  EXPECT_TRUE(shuffled.is_connected());
}

TEST_F(Eftl, RefusedCredentials) {
  EftlOptions o = Options();
  o.password = "wrong";
  try {
    EftlConnection conn(server_->eftl_url(Channel("auth")), o);
    ADD_FAILURE();
  } catch (const EftlError& e) {
    EXPECT_EQ(e.code(), EftlError::kAuthenticationFailed) << e.what();
  }
  // Credentials in the URL win over the options'.
  const std::string url = "ws://" + server_->admin_user() + ":" + server_->admin_password() +
                          "@127.0.0.1:" + std::to_string(server_->eftl_port()) + "/" +
                          Channel("auth");
  EftlConnection conn(url, o);
  EXPECT_TRUE(conn.is_connected());
}

// A dropped connection resumes with its client_id and id_token: a publish whose ack was lost is
// re-sent with its seq and acknowledged without being stored twice, and delivery seqs continue.
TEST_F(Eftl, DroppedConnectionResumesWithIdToken) {
  Inbox mine, observer;  // before the connections: their handlers use them
  const std::string channel = Channel("resume");
  Proxy proxy(server_->eftl_port());
  std::mutex mutex;
  std::vector<bool> reconnects;
  EftlOptions o = Options();
  o.on_reconnect = [&](bool resumed) {
    std::lock_guard lock(mutex);
    reconnects.push_back(resumed);
  };
  EftlConnection conn("ws://127.0.0.1:" + std::to_string(proxy.port()) + "/" + channel, o);
  EftlConnection direct(server_->eftl_url(channel), Options());
  conn.subscribe({}, mine.handler());
  direct.subscribe({}, observer.handler());
  const std::string client_id = conn.client_id();

  direct.publish(N(1));
  ASSERT_TRUE(mine.wait_for(1));
  ASSERT_TRUE(observer.wait_for(1));

  // The server's answers stop arriving: the publish is stored, its ack is lost with the link.
  proxy.pause_downstream(true);
  std::promise<EftlResult> published;
  conn.publish_async(N(100), [&](const EftlResult& r) { published.set_value(r); });
  ASSERT_TRUE(observer.wait_for(2));
  EXPECT_EQ(observer.numbers().back(), 100);
  proxy.drop_all();
  proxy.pause_downstream(false);

  auto result = published.get_future();
  ASSERT_EQ(result.wait_for(20s), std::future_status::ready);
  const EftlResult r = result.get();
  EXPECT_TRUE(r.ok()) << r.code << " " << r.reason;  // re-sent with its seq and acknowledged
  {
    std::lock_guard lock(mutex);
    ASSERT_EQ(reconnects.size(), 1u);
    EXPECT_TRUE(reconnects.front()) << "the server did not resume the session";
  }
  EXPECT_EQ(conn.client_id(), client_id);
  EXPECT_TRUE(conn.is_connected());

  direct.publish(N(2));
  direct.publish(N(3));
  ASSERT_TRUE(observer.wait_for(4));
  EXPECT_EQ(observer.numbers(), (std::vector<int64_t>{1, 100, 2, 3}));  // 100 stored once
  ASSERT_TRUE(mine.wait_for(3));
  std::vector<int64_t> seen = mine.numbers();
  EXPECT_EQ(seen.front(), 1);
  EXPECT_EQ(seen.back(), 3);
  int64_t last = 0;
  for (const auto& m : mine.messages()) {  // monotonic, never repeated
    EXPECT_GT(m.seq(), last);
    last = m.seq();
  }
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), seen.size());
}

// The client echoes the server's heartbeats: an idle connection outlives the server's timeout.
TEST(EftlHeartbeat, AnIdleConnectionStaysOpen) {
  if (!fs::exists(testsupport::magnetar_binary())) GTEST_SKIP() << "no magnetar binary";
  MagnetarServer server("memory", {"--eftl-heartbeat", "1", "--eftl-timeout", "2"});
  server.start();
  EftlOptions o;
  o.username = server.admin_user();
  o.password = server.admin_password();
  std::atomic<int> reconnects{0};
  o.on_reconnect = [&](bool) { ++reconnects; };
  EftlConnection conn(server.eftl_url("idle"), o);
  std::this_thread::sleep_for(4s);  // twice the server's timeout, with nothing sent by the app
  EXPECT_TRUE(conn.is_connected());
  EXPECT_EQ(reconnects, 0);
  conn.publish(N(1));
}

// A standard durable with client acks across a server restart (RocksDB): what was acked is not
// delivered again, what was not acked comes back, nothing is lost.
TEST(EftlRestart, ClientAckDurableAcrossAServerRestart) {
  Inbox inbox;  // before the connections: their handlers use it
  if (!fs::exists(testsupport::magnetar_binary())) GTEST_SKIP() << "no magnetar binary";
  MagnetarServer server("rocksdb");
  server.start();
  const std::string url = server.eftl_url("restart");
  EftlOptions o;
  o.username = server.admin_user();
  o.password = server.admin_password();
  o.auto_reconnect_base_delay = 200ms;
  o.auto_reconnect_max_delay = 1s;
  o.handshake_timeout = 5s;
  std::atomic<int> reconnects{0};
  o.on_reconnect = [&](bool) { ++reconnects; };
  EftlConnection sub(url, o);
  EftlConnection pub(url, o);
  sub.subscribe({.durable = "orders", .ack = EftlAckMode::kClient}, inbox.handler());
  for (int i = 1; i <= 6; ++i) pub.publish(N(i));
  ASSERT_TRUE(inbox.wait_for(6));
  std::vector<EftlMessage> got = inbox.messages();
  ASSERT_EQ(inbox.numbers(), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  sub.acknowledge(got[0]);      // 1
  sub.acknowledge_all(got[2]);  // 2, 3
  sub.acknowledge(got[4]);      // 5
  // Acks are one-way; a round trip on the same connection shows they were read, then give the
  // durable's cursor write a moment before the server is stopped.
  sub.kv_map("barrier").get("k");
  std::this_thread::sleep_for(500ms);

  server.restart();
  for (int i = 0; i < 500 && (reconnects < 2 || !sub.is_connected() || !pub.is_connected()); ++i) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(sub.is_connected());
  ASSERT_TRUE(pub.is_connected());
  pub.publish(N(7));
  ASSERT_TRUE(inbox.wait_for(9)) << inbox.size();
  std::this_thread::sleep_for(300ms);  // anything redelivered wrongly would show up here
  const std::vector<int64_t> all = inbox.numbers();
  std::vector<int64_t> after(all.begin() + 6, all.end());
  std::sort(after.begin(), after.end());
  EXPECT_EQ(after, (std::vector<int64_t>{4, 6, 7}));  // the unacked two and the new one, once
  for (const auto& m : inbox.messages()) EXPECT_GE(m.delivery_count(), 1);
}

}  // namespace
}  // namespace magnetar::client
