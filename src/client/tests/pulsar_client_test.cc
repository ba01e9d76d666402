// The Pulsar binary client against the real `magnetar serve` (label "integration"), plus a scripted
// broker on loopback for what a real one does not do on purpose (silence).

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "client/auth.h"
#include "client/pulsar/pulsar_client.h"
#include "client/tests/support/process.h"
#include "pulsar/codec/frame.h"

namespace mc = magnetar::client;
namespace mp = magnetar::client::pulsar;
namespace ts = magnetar::client::testsupport;
using namespace std::chrono_literals;

namespace {

std::string Topic(const std::string& name) { return "persistent://public/default/" + name; }

class PulsarClientTest : public ::testing::Test {
 protected:
  void Start(const std::string& storage = "memory", std::vector<std::string> extra = {}) {
    server_ = std::make_unique<ts::MagnetarServer>(storage, std::move(extra));
    server_->start();
    ASSERT_NE(server_->pulsar_port(), 0) << server_->log();
    token_ = mc::PasswordAuthenticator(server_->url(), server_->admin_user(),
                                       server_->admin_password())
                 .authenticate()
                 .token;
  }
  mp::ClientOptions Options() {
    mp::ClientOptions o;
    o.service_url = "pulsar://127.0.0.1:" + std::to_string(server_->pulsar_port());
    o.token = token_;
    o.operation_timeout = 10s;
    o.backoff_initial = 50ms;
    o.backoff_max = 500ms;
    return o;
  }

  std::unique_ptr<ts::MagnetarServer> server_;
  std::string token_;
};

TEST(PulsarClientUnit, ServiceUrlDefaultsAndRejections) {
  auto u = mp::ServiceUrl::parse("pulsar://broker.example");
  EXPECT_EQ(u.host, "broker.example");
  EXPECT_EQ(u.port, 6650);
  EXPECT_FALSE(u.tls);
  auto s = mp::ServiceUrl::parse("pulsar+ssl://h");
  EXPECT_TRUE(s.tls);
  EXPECT_EQ(s.port, 6651);
  EXPECT_EQ(mp::ServiceUrl::parse("pulsar://h:7000/").str(), "pulsar://h:7000");
  EXPECT_EQ(mp::ServiceUrl::parse("pulsar://[::1]:7000").host, "::1");
  EXPECT_THROW(mp::ServiceUrl::parse("http://h:6650"), mp::PulsarError);
  EXPECT_THROW(mp::ServiceUrl::parse("pulsar://:6650"), mp::PulsarError);
  EXPECT_THROW(mp::ServiceUrl::parse("pulsar://h:0"), mp::PulsarError);
  EXPECT_THROW(mp::ServiceUrl::parse("pulsar://h:x"), mp::PulsarError);
}

TEST(PulsarClientUnit, BackoffDoublesToTheCapWithJitter) {
  mp::Backoff b(100ms, 1000ms);
  for (int i = 0; i < 50; ++i) {
    const auto first = b.next(0ms);
    EXPECT_GE(first.count(), 1);
    EXPECT_LE(first.count(), 100);
  }
  auto d = b.next(0ms);
  for (int i = 0; i < 10; ++i) {
    const auto next = b.next(d);
    EXPECT_GE(next, std::min(d * 2, mp::Millis(1000)) + 1ms);
    EXPECT_LE(next, std::min(d * 2, mp::Millis(1000)) + 100ms);
    d = next;
  }
  EXPECT_LE(d.count(), 1100);
  EXPECT_EQ(mp::ParseSubscriptionType("Key_Shared"), mp::SubscriptionType::kKeyShared);
  EXPECT_FALSE(mp::ParseSubscriptionType("fanout"));
}

TEST_F(PulsarClientTest, ProduceAndConsumeWithPropertiesAndKeys) {
  Start();
  mp::PulsarClient client(Options());
  EXPECT_EQ(client.partitions(Topic("pk")), 0u);
  EXPECT_EQ(client.lookup(Topic("pk")), "pulsar://127.0.0.1:" + std::to_string(server_->pulsar_port()));
  mp::Consumer consumer = client.subscribe({.topic = Topic("pk"),
                                            .subscription = "s1",
                                            .type = mp::SubscriptionType::kExclusive,
                                            .initial_position = mp::InitialPosition::kEarliest});
  mp::Producer producer = client.create_producer({.topic = Topic("pk")});
  EXPECT_FALSE(producer.producer_name().empty());
  std::vector<mp::MessageId> ids;
  for (int i = 0; i < 3; ++i) {
    mp::OutgoingMessage m;
    m.payload = "payload-" + std::to_string(i);
    m.key = "key-" + std::to_string(i);
    m.properties = {{"n", std::to_string(i)}, {"kind", "test"}};
    m.event_time = 1000 + i;
    ids.push_back(producer.send(std::move(m)));
  }
  for (int i = 0; i < 3; ++i) {
    auto m = consumer.receive(10s);
    ASSERT_TRUE(m) << "message " << i;
    EXPECT_EQ(m->payload, "payload-" + std::to_string(i));
    ASSERT_TRUE(m->key);
    EXPECT_EQ(*m->key, "key-" + std::to_string(i));
    EXPECT_EQ(m->properties.at("n"), std::to_string(i));
    EXPECT_EQ(m->properties.at("kind"), "test");
    EXPECT_EQ(m->event_time, 1000u + i);
    EXPECT_EQ(m->id.ledger, ids[i].ledger);
    EXPECT_EQ(m->id.entry, ids[i].entry);
    EXPECT_EQ(m->producer_name, producer.producer_name());
    consumer.acknowledge(m->id);
  }
  EXPECT_FALSE(consumer.receive(200ms));
}

TEST_F(PulsarClientTest, BatchedSendsArriveInOrder) {
  Start();
  mp::PulsarClient client(Options());
  mp::Consumer consumer = client.subscribe({.topic = Topic("batch"),
                                            .subscription = "s",
                                            .initial_position = mp::InitialPosition::kEarliest});
  mp::Producer producer = client.create_producer(
      {.topic = Topic("batch"), .batching = true, .batch_max_messages = 100});
  std::mutex mu;
  std::vector<mp::SendResult> results;
  for (int i = 0; i < 450; ++i) {
    producer.send_async({.payload = "m" + std::to_string(i), .properties = {{"i", std::to_string(i)}}},
                        [&](const mp::SendResult& r) {
                          std::lock_guard lock(mu);
                          results.push_back(r);
                        });
  }
  producer.flush();
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(results.size(), 450u);
    for (const auto& r : results) EXPECT_FALSE(r.error) << r.error->what();
  }
  for (int i = 0; i < 450; ++i) {
    auto m = consumer.receive(10s);
    ASSERT_TRUE(m) << "message " << i;
    EXPECT_EQ(m->payload, "m" + std::to_string(i));
    EXPECT_EQ(m->properties.at("i"), std::to_string(i));
    consumer.acknowledge(m->id);
  }
}

TEST_F(PulsarClientTest, ExclusiveRefusesASecondConsumer) {
  Start();
  mp::PulsarClient client(Options());
  mp::Consumer first = client.subscribe({.topic = Topic("ex"), .subscription = "only"});
  try {
    mp::Consumer second = client.subscribe({.topic = Topic("ex"), .subscription = "only"});
    FAIL() << "a second Exclusive consumer was accepted";
  } catch (const mp::PulsarError& e) {
    EXPECT_EQ(e.code(), mp::ErrorCode::kServerError);
    EXPECT_EQ(e.server_error(), 5) << e.what();  // ConsumerBusy
  }
}

TEST_F(PulsarClientTest, SharedSplitsMessagesBetweenTwoConsumers) {
  Start();
  mp::PulsarClient client(Options());
  mp::ConsumerOptions co{.topic = Topic("shared"),
                         .subscription = "workers",
                         .type = mp::SubscriptionType::kShared,
                         .initial_position = mp::InitialPosition::kEarliest};
  mp::Consumer a = client.subscribe(co);
  mp::Consumer b = client.subscribe(co);
  mp::Producer producer = client.create_producer({.topic = Topic("shared")});
  for (int i = 0; i < 40; ++i) producer.send({.payload = "w" + std::to_string(i)});
  std::set<std::string> seen;
  int from_a = 0, from_b = 0;
  for (int idle = 0; seen.size() < 40 && idle < 50;) {
    bool got = false;
    if (auto m = a.receive(100ms)) {
      seen.insert(m->payload);
      a.acknowledge(m->id);
      ++from_a;
      got = true;
    }
    if (auto m = b.receive(100ms)) {
      seen.insert(m->payload);
      b.acknowledge(m->id);
      ++from_b;
      got = true;
    }
    if (!got) ++idle;
  }
  EXPECT_EQ(seen.size(), 40u);
  EXPECT_EQ(from_a + from_b, 40);
  EXPECT_GT(from_a, 0);
  EXPECT_GT(from_b, 0);
}

TEST_F(PulsarClientTest, NackRedeliversAndAcksStick) {
  Start();
  mp::PulsarClient client(Options());
  mp::ConsumerOptions co{.topic = Topic("nack"),
                         .subscription = "s",
                         .type = mp::SubscriptionType::kShared,
                         .initial_position = mp::InitialPosition::kEarliest};
  auto consumer = std::make_unique<mp::Consumer>(client.subscribe(co));
  mp::Producer producer = client.create_producer({.topic = Topic("nack")});
  producer.send({.payload = "one"});
  producer.send({.payload = "two"});

  auto m1 = consumer->receive(10s);
  ASSERT_TRUE(m1);
  EXPECT_EQ(m1->payload, "one");
  EXPECT_EQ(m1->redelivery_count, 0u);
  consumer->negative_acknowledge(m1->id);
  // "two" may come before the redelivered "one".
  std::optional<mp::Message> again, two;
  for (int i = 0; i < 2; ++i) {
    auto m = consumer->receive(10s);
    ASSERT_TRUE(m);
    (m->payload == "one" ? again : two) = *m;
  }
  ASSERT_TRUE(again);
  ASSERT_TRUE(two);
  EXPECT_GE(again->redelivery_count, 1u);
  EXPECT_EQ(again->id, m1->id);
  consumer->acknowledge(again->id);
  // "two" is left unacked: a new consumer on the subscription gets it, and only it.
  consumer->close();
  consumer = std::make_unique<mp::Consumer>(client.subscribe(co));
  auto m = consumer->receive(10s);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, "two");
  consumer->acknowledge(m->id);
  EXPECT_FALSE(consumer->receive(300ms));
}

TEST_F(PulsarClientTest, CumulativeAckAndSeek) {
  Start();
  mp::PulsarClient client(Options());
  mp::Producer producer = client.create_producer({.topic = Topic("cum")});
  std::vector<mp::MessageId> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(producer.send({.payload = "c" + std::to_string(i)}));
  mp::ConsumerOptions co{.topic = Topic("cum"),
                         .subscription = "s",
                         .initial_position = mp::InitialPosition::kEarliest};
  {
    mp::Consumer consumer = client.subscribe(co);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(consumer.receive(10s));
    consumer.acknowledge_cumulative(ids[2]);
    // Seek back to the second message: it and everything after come again.
    consumer.seek(ids[1]);
    auto m = consumer.receive(10s);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "c1");
    consumer.seek(ids[3]);
    m = consumer.receive(10s);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "c3");
    consumer.acknowledge_cumulative(ids[3]);
  }
  mp::Consumer consumer = client.subscribe(co);
  auto m = consumer.receive(10s);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, "c4");
}

TEST_F(PulsarClientTest, ABadTokenIsRefusedWithAuthenticationError) {
  Start();
  mp::ClientOptions o = Options();
  o.token = "not-a-jwt";
  mp::PulsarClient client(o);
  try {
    client.create_producer({.topic = Topic("auth")});
    FAIL() << "a bad token was accepted";
  } catch (const mp::PulsarError& e) {
    EXPECT_EQ(e.code(), mp::ErrorCode::kServerError) << e.what();
    EXPECT_EQ(e.server_error(), 3) << e.what();  // AuthenticationError
  }
}

// The broker is SIGKILLed and restarted (RocksDB, same data dir and port) while a producer sends
// and a consumer receives: every message the broker receipted reaches the consumer.
TEST_F(PulsarClientTest, BrokerKilledAndRestartedMidStreamLosesNoReceiptedMessage) {
  Start("rocksdb");
  mp::PulsarClient client(Options());
  mp::Consumer consumer = client.subscribe({.topic = Topic("crash"),
                                            .subscription = "durable",
                                            .initial_position = mp::InitialPosition::kEarliest});
  mp::Producer producer =
      client.create_producer({.topic = Topic("crash"), .send_timeout = 60s, .max_pending_messages = 50});

  std::mutex mu;
  std::set<std::string> receipted, received;
  std::atomic<int> failed{0};
  std::atomic<bool> producing{true};
  constexpr int kTotal = 600;
  std::thread sender([&] {
    for (int i = 0; i < kTotal; ++i) {
      const std::string payload = "m" + std::to_string(i);
      producer.send_async({.payload = payload}, [&, payload](const mp::SendResult& r) {
        std::lock_guard lock(mu);
        if (r.error) {
          ++failed;
        } else {
          receipted.insert(payload);
        }
      });
      std::this_thread::sleep_for(2ms);
    }
    producing = false;
  });
  std::thread receiver([&] {
    const auto end = std::chrono::steady_clock::now() + 90s;
    while (std::chrono::steady_clock::now() < end) {
      auto m = consumer.receive(200ms);
      if (!m) {
        std::lock_guard lock(mu);
        if (!producing && received.size() >= static_cast<size_t>(kTotal)) break;
        continue;
      }
      consumer.acknowledge(m->id);
      std::lock_guard lock(mu);
      received.insert(m->payload);
    }
  });
  // Let some traffic through, then crash the broker and bring it back on the same ports.
  for (int i = 0; i < 100; ++i) {
    {
      std::lock_guard lock(mu);
      if (received.size() >= 150) break;
    }
    std::this_thread::sleep_for(20ms);
  }
  server_->kill();
  std::this_thread::sleep_for(500ms);
  server_->start(server_->port());
  sender.join();
  producer.flush();
  receiver.join();
  std::lock_guard lock(mu);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(receipted.size(), static_cast<size_t>(kTotal));
  for (const auto& p : receipted) EXPECT_TRUE(received.count(p)) << p << " was receipted but never received";
}

// A broker that completes the handshake and then answers nothing: requests time out.
// A self-signed certificate for localhost and 127.0.0.1, made with the openssl command.
bool MakeCertificate(const std::filesystem::path& dir) {
  auto r = ts::run_command(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
       (dir / "server.key").string(), "-out", (dir / "server.crt").string(), "-days", "2", "-subj",
       "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"});
  return r.code == 0;
}

TEST(PulsarClientTls, ProducesAndConsumesOverTlsAndChecksTheCertificate) {
  if (!std::filesystem::exists(ts::magnetar_binary())) GTEST_SKIP() << "no magnetar binary";
  if (!std::filesystem::exists("/usr/bin/openssl")) GTEST_SKIP() << "openssl makes the certificate";
  ts::TempDir dir;
  ASSERT_TRUE(MakeCertificate(dir.path()));
  const std::string crt = (dir.path() / "server.crt").string();
  ts::MagnetarServer server("memory", {"--tls-cert", crt, "--tls-key",
                                       (dir.path() / "server.key").string()});
  server.start();
  ASSERT_NE(server.pulsar_tls_port(), 0) << server.log();
  mc::TlsOptions trust;
  trust.ca_file = crt;
  const std::string token = mc::PasswordAuthenticator(server.url(), server.admin_user(),
                                                      server.admin_password(), nullptr, 10s, trust)
                                .authenticate()
                                .token;
  const std::string tls_url = "pulsar+ssl://127.0.0.1:" + std::to_string(server.pulsar_tls_port());
  mp::ClientOptions o;
  o.service_url = "pulsar+ssl://localhost:" + std::to_string(server.pulsar_tls_port());
  o.token = token;
  o.tls = trust;
  o.operation_timeout = 10s;
  {
    mp::PulsarClient client(o);
    // The lookup answers the TLS URL (the plain one is for pulsar:// clients).
    EXPECT_EQ(client.lookup(Topic("secure")), tls_url);
    mp::Consumer consumer = client.subscribe({.topic = Topic("secure"),
                                              .subscription = "s",
                                              .initial_position = mp::InitialPosition::kEarliest});
    mp::Producer producer = client.create_producer({.topic = Topic("secure")});
    std::vector<mp::MessageId> ids;
    for (int i = 0; i < 3; ++i) {
      ids.push_back(producer.send({.payload = "tls-" + std::to_string(i), .key = "k"}));
    }
    for (int i = 0; i < 3; ++i) {
      auto m = consumer.receive(10s);
      ASSERT_TRUE(m) << "message " << i;
      EXPECT_EQ(m->payload, "tls-" + std::to_string(i));
      EXPECT_EQ(m->id.entry, ids[i].entry);
      consumer.acknowledge(m->id);
    }
  }
  {
    // The plain port serves the same topic: what went in over TLS comes out here.
    mp::ClientOptions plain = o;
    plain.service_url = "pulsar://127.0.0.1:" + std::to_string(server.pulsar_port());
    plain.tls = {};
    mp::PulsarClient client(plain);
    EXPECT_EQ(client.lookup(Topic("secure")), "pulsar://127.0.0.1:" + std::to_string(server.pulsar_port()));
    mp::Consumer consumer = client.subscribe({.topic = Topic("secure"),
                                              .subscription = "plain",
                                              .initial_position = mp::InitialPosition::kEarliest});
    auto m = consumer.receive(10s);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "tls-0");
  }
  {
    // Not trusted (not in the system's store): the handshake fails, the operation times out.
    mp::ClientOptions untrusted = o;
    untrusted.tls = {};
    untrusted.operation_timeout = 2s;
    mp::PulsarClient client(untrusted);
    EXPECT_THROW(client.create_producer({.topic = Topic("secure")}), mp::PulsarError);
  }
  {
    // verify=false (tests only) accepts it.
    mp::ClientOptions unverified = o;
    unverified.tls = {};
    unverified.tls.verify = false;
    mp::PulsarClient client(unverified);
    EXPECT_NO_THROW(client.create_producer({.topic = Topic("secure")}).send({.payload = "x"}));
  }
}

TEST_F(PulsarClientTest, PartitionedTopicRoutesByKeyAndConsumesEveryPartition) {
  Start("memory", {"--pulsar-default-partitions", "3"});
  mp::PulsarClient client(Options());
  // A topic first seen in PARTITIONED_METADATA is created with the default count.
  EXPECT_EQ(client.partitions(Topic("parts")), 3u);
  EXPECT_EQ(client.partitions(Topic("parts-partition-1")), 0u);  // a partition is a plain topic
  mp::Consumer consumer = client.subscribe({.topic = Topic("parts"),
                                            .subscription = "all",
                                            .type = mp::SubscriptionType::kShared,
                                            .initial_position = mp::InitialPosition::kEarliest});
  EXPECT_EQ(consumer.topic(), Topic("parts"));
  mp::Producer producer = client.create_producer({.topic = Topic("parts")});
  EXPECT_EQ(producer.topic(), Topic("parts"));
  std::map<std::string, std::set<int32_t>> partitions_by_key;
  std::set<int32_t> unkeyed;
  std::map<std::string, mp::MessageId> sent;  // payload -> id
  for (int i = 0; i < 12; ++i) {
    const std::string key = "key-" + std::to_string(i % 4);
    const std::string payload = "keyed-" + std::to_string(i);
    mp::MessageId id = producer.send({.payload = payload, .key = key});
    ASSERT_GE(id.partition, 0);
    ASSERT_LT(id.partition, 3);
    partitions_by_key[key].insert(id.partition);
    sent[payload] = id;
  }
  for (int i = 0; i < 6; ++i) {
    const std::string payload = "plain-" + std::to_string(i);
    mp::MessageId id = producer.send({.payload = payload});
    unkeyed.insert(id.partition);
    sent[payload] = id;
  }
  for (const auto& [key, parts] : partitions_by_key) EXPECT_EQ(parts.size(), 1u) << key;
  EXPECT_EQ(unkeyed, (std::set<int32_t>{0, 1, 2}));  // round-robin reaches every partition
  std::set<std::string> received;
  for (size_t i = 0; i < sent.size(); ++i) {
    auto m = consumer.receive(10s);
    ASSERT_TRUE(m) << "after " << received.size() << " messages";
    ASSERT_TRUE(sent.count(m->payload)) << m->payload;
    const mp::MessageId& id = sent[m->payload];
    EXPECT_EQ(m->id.partition, id.partition) << m->payload;
    EXPECT_EQ(m->id.entry, id.entry);
    EXPECT_EQ(m->topic, Topic("parts") + "-partition-" + std::to_string(id.partition));
    received.insert(m->payload);
    consumer.acknowledge(m->id);
  }
  EXPECT_EQ(received.size(), sent.size());
  EXPECT_FALSE(consumer.receive(300ms));
  // Acks went to the right partitions: a new consumer of the subscription gets nothing again.
  consumer.close();
  mp::Consumer again = client.subscribe({.topic = Topic("parts"),
                                         .subscription = "all",
                                         .type = mp::SubscriptionType::kShared});
  EXPECT_FALSE(again.receive(500ms));
}

TEST(PulsarClientTimeouts, UnansweredRequestsTimeOut) {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  const uint16_t port = acceptor.local_endpoint().port();
  std::atomic<bool> stop{false};
  std::thread broker([&] {
    boost::system::error_code ec;
    asio::ip::tcp::socket s(io);
    acceptor.accept(s, ec);
    if (ec) return;
    std::string buffer;
    char chunk[4096];
    bool connected = false;
    while (!stop) {
      size_t n = s.read_some(asio::buffer(chunk), ec);
      if (ec) return;
      buffer.append(chunk, n);
      magnetar::pulsar::Frame frame;
      auto r = magnetar::pulsar::ParseFrame(buffer, 1 << 20, &frame);
      if (r.status != magnetar::pulsar::ParseStatus::kFrame) continue;
      buffer.erase(0, r.consumed);
      if (!connected && frame.command.type() == magnetar::pulsar::proto::BaseCommand::CONNECT) {
        auto c = magnetar::pulsar::MakeCommand(magnetar::pulsar::proto::BaseCommand::CONNECTED);
        c.mutable_connected()->set_server_version("silent");
        c.mutable_connected()->set_protocol_version(21);
        std::string out;
        magnetar::pulsar::AppendCommand(out, c);
        asio::write(s, asio::buffer(out), ec);
        connected = true;
      }
      // Everything else (LOOKUP, PARTITIONED_METADATA) goes unanswered.
    }
  });
  {
    mp::ClientOptions o;
    o.service_url = "pulsar://127.0.0.1:" + std::to_string(port);
    o.token = "t";
    o.operation_timeout = 400ms;
    mp::PulsarClient client(o);
    try {
      client.partitions(Topic("silent"));
      FAIL() << "an unanswered request succeeded";
    } catch (const mp::PulsarError& e) {
      EXPECT_EQ(e.code(), mp::ErrorCode::kTimeout) << e.what();
    }
    client.close();
  }
  stop = true;
  acceptor.close();
  broker.join();
}

TEST_F(PulsarClientTest, FailoverAndKeySharedDeliver) {
  Start();
  mp::PulsarClient client(Options());
  for (auto type : {mp::SubscriptionType::kFailover, mp::SubscriptionType::kKeyShared}) {
    const std::string topic = Topic(type == mp::SubscriptionType::kFailover ? "fo" : "ks");
    mp::ConsumerOptions co{.topic = topic,
                           .subscription = "s",
                           .type = type,
                           .initial_position = mp::InitialPosition::kEarliest};
    mp::Consumer a = client.subscribe(co);
    mp::Consumer b = client.subscribe(co);  // both types take a second consumer
    mp::Producer producer = client.create_producer({.topic = topic});
    for (int i = 0; i < 10; ++i) {
      producer.send({.payload = "p" + std::to_string(i), .key = "key-" + std::to_string(i % 3)});
    }
    std::set<std::string> seen;
    for (int idle = 0; seen.size() < 10 && idle < 30;) {
      bool got = false;
      for (mp::Consumer* c : {&a, &b}) {
        if (auto m = c->receive(100ms)) {
          seen.insert(m->payload);
          c->acknowledge(m->id);
          got = true;
        }
      }
      if (!got) ++idle;
    }
    EXPECT_EQ(seen.size(), 10u);
  }
}

// A broker that pings once (the client must answer PONG) and then never answers the client's
// PINGs: the client declares the connection dead and connects again.
TEST(PulsarClientTimeouts, PingIsAnsweredAndASilentBrokerIsDropped) {
  namespace asio = boost::asio;
  using Type = magnetar::pulsar::proto::BaseCommand;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  const uint16_t port = acceptor.local_endpoint().port();
  std::atomic<int> accepted{0};
  std::atomic<bool> got_pong{false};
  std::atomic<bool> saw_eof{false};
  std::thread broker([&] {
    for (int conn = 0; conn < 2; ++conn) {
      boost::system::error_code ec;
      asio::ip::tcp::socket s(io);
      acceptor.accept(s, ec);
      if (ec) return;
      ++accepted;
      std::string buffer;
      char chunk[4096];
      for (;;) {
        size_t n = s.read_some(asio::buffer(chunk), ec);
        if (ec) {
          saw_eof = true;
          break;
        }
        buffer.append(chunk, n);
        for (;;) {
          magnetar::pulsar::Frame frame;
          auto r = magnetar::pulsar::ParseFrame(buffer, 1 << 20, &frame);
          if (r.status != magnetar::pulsar::ParseStatus::kFrame) break;
          buffer.erase(0, r.consumed);
          if (frame.command.type() == Type::CONNECT) {
            std::string out;
            auto c = magnetar::pulsar::MakeCommand(Type::CONNECTED);
            c.mutable_connected()->set_server_version("mute");
            magnetar::pulsar::AppendCommand(out, c);
            magnetar::pulsar::AppendCommand(out, magnetar::pulsar::MakeCommand(Type::PING));
            asio::write(s, asio::buffer(out), ec);
          } else if (frame.command.type() == Type::PONG) {
            got_pong = true;
          }
          // The client's PINGs go unanswered.
        }
      }
      if (conn == 1) return;
    }
  });
  {
    mp::ClientOptions o;
    o.service_url = "pulsar://127.0.0.1:" + std::to_string(port);
    o.token = "t";
    o.ping_interval = 100ms;
    o.backoff_initial = 10ms;
    o.operation_timeout = 5s;
    mp::PulsarClient client(o);
    EXPECT_THROW(client.partitions(Topic("mute")), mp::PulsarError);  // not answered either
    for (int i = 0; i < 100 && accepted.load() < 2; ++i) std::this_thread::sleep_for(50ms);
    EXPECT_TRUE(got_pong.load());
    EXPECT_TRUE(saw_eof.load());
    EXPECT_GE(accepted.load(), 2);
    client.close();
  }
  acceptor.close();
  broker.join();
}

}  // namespace
