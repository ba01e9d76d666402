// Redis-only checks, on a real redis-server: what a second node, a restart and an outage of
// Redis do. (The parameterised contract in storage_contract_test.cc covers the rest.)

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "auth/authenticator.h"
#include "storage/redis/redis_cluster_bus.h"
#include "storage/redis/redis_record_stores.h"
#include "storage/redis/redis_shared_limits.h"
#include "storage/redis/redis_url.h"
#include "tests/storage_contract/engines.h"
#include "tests/storage_contract/redis_test_server.h"

namespace magnetar::contract {
namespace {

using core::MessagePtr;
using core::TopicKey;

class RedisEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = OpenRedis(clock_, /*flush=*/true);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    node_a_ = std::move(opened).value();
  }

  std::unique_ptr<TestEngine> SecondNode() {
    auto opened = OpenRedis(clock_, /*flush=*/false);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return opened.ok() ? std::move(opened).value() : nullptr;
  }

  const Clock& clock_ = SystemClock::Instance();
  std::unique_ptr<TestEngine> node_a_;
  const TopicKey topic_{"owner-1", "jobs"};
};

TEST_F(RedisEngineTest, ASecondNodeSeesEverythingAndIdsKeepIncreasing) {
  auto first = AppendSync(*node_a_->messages, topic_, Drafts(3));
  ASSERT_TRUE(first.ok());
  auth::User user;
  user.user_id = "u1";
  user.username = "alice";
  user.created_at = 1;
  ASSERT_TRUE(node_a_->users->Create(user).ok());
  ASSERT_TRUE(node_a_->kv->Put("deny:jti", "x", 0).ok());

  auto node_b = SecondNode();
  ASSERT_TRUE(node_b);
  EXPECT_EQ(node_b->users->GetByUsername("alice")->user_id, "u1");
  EXPECT_EQ(**node_b->kv->Get("deny:jti"), "x");
  auto read = node_b->messages->Read(topic_, {.limit = 10});
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(Ids(read->messages), Ids(*first));
  auto more = AppendSync(*node_b->messages, topic_, Drafts(2));
  ASSERT_TRUE(more.ok());
  EXPECT_GT(more->front()->id, first->back()->id);
}

TEST_F(RedisEngineTest, ConcurrentAppendsFromTwoNodesGetOneIncreasingIdSequence) {
  auto node_b = SecondNode();
  ASSERT_TRUE(node_b);
  constexpr int kEach = 200;
  std::vector<MessageId> ids_a, ids_b;
  auto run = [&](core::MessageStore& store, std::vector<MessageId>& ids) {
    for (int i = 0; i < kEach; ++i) {
      auto r = AppendSync(store, topic_, Drafts(1));
      ASSERT_TRUE(r.ok());
      ids.push_back(r->front()->id);
    }
  };
  std::thread a([&] { run(*node_a_->messages, ids_a); });
  std::thread b([&] { run(*node_b->messages, ids_b); });
  a.join();
  b.join();
  auto all = node_a_->messages->Read(topic_, {.limit = 1000});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->messages.size(), 2u * kEach);
  auto ids = Ids(all->messages);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());
  EXPECT_TRUE(std::is_sorted(ids_a.begin(), ids_a.end()));
  EXPECT_TRUE(std::is_sorted(ids_b.begin(), ids_b.end()));
}

// Collects what a bus delivers.
struct Collector {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<MessageId> ids;

  core::ClusterBus::Delivery Sink() {
    return [this](std::vector<MessagePtr> messages) {
      std::lock_guard lock(mutex);
      for (const auto& m : messages) ids.push_back(m->id);
      cv.notify_all();
    };
  }
  bool WaitFor(size_t n) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return ids.size() >= n; });
  }
};

TEST_F(RedisEngineTest, TheBusDeliversEveryNodesAppendsInIdOrder) {
  auto node_b = SecondNode();
  ASSERT_TRUE(node_b);
  auto before = AppendSync(*node_a_->messages, topic_, Drafts(2));  // not delivered: before watch
  ASSERT_TRUE(before.ok());
  auto bus = storage::RedisClusterBus::Start(node_a_->redis);
  Collector got;
  bus->Watch(topic_, before->back()->id, got.Sink());
  std::vector<MessageId> appended;
  for (int i = 0; i < 50; ++i) {
    auto& store = i % 2 ? *node_b->messages : *node_a_->messages;
    auto r = AppendSync(store, topic_, Drafts(1 + i % 3));
    ASSERT_TRUE(r.ok());
    for (const auto& m : *r) appended.push_back(m->id);
  }
  ASSERT_TRUE(got.WaitFor(appended.size()));
  std::lock_guard lock(got.mutex);
  EXPECT_EQ(got.ids, appended);
  bus->Stop();
}

TEST_F(RedisEngineTest, ARedisRestartLosesNothingAcknowledgedAndTheEngineReconnects) {
  if (getenv("MAGNETAR_TEST_REDIS_URL")) GTEST_SKIP() << "needs the Redis this test starts";
  auto bus = storage::RedisClusterBus::Start(node_a_->redis);
  Collector got;
  bus->Watch(topic_, MessageId::Min(), got.Sink());
  std::vector<MessageId> acknowledged;
  for (int i = 0; i < 20; ++i) {
    auto r = AppendSync(*node_a_->messages, topic_, Drafts(1));
    ASSERT_TRUE(r.ok());
    acknowledged.push_back(r->front()->id);
  }
  ASSERT_TRUE(StopTestRedis().ok());
  auto down = AppendSync(*node_a_->messages, topic_, Drafts(1));
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE(node_a_->messages->Health().ok());
  EXPECT_FALSE(node_a_->messages->Health().message().empty());

  ASSERT_TRUE(StartTestRedis().ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!node_a_->messages->Health().ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(node_a_->messages->Health().ok());
  for (int i = 0; i < 5; ++i) {
    auto r = AppendSync(*node_a_->messages, topic_, Drafts(1));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    acknowledged.push_back(r->front()->id);
  }
  auto all = node_a_->messages->Read(topic_, {.limit = 1000});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Ids(all->messages), acknowledged);
  // The bus caught up after the outage: every acknowledged message, once, in order.
  ASSERT_TRUE(got.WaitFor(acknowledged.size()));
  std::lock_guard lock(got.mutex);
  EXPECT_EQ(got.ids, acknowledged);
  bus->Stop();
}

// A token check reads the deny-list record and the user in one round trip on Redis: the same
// answers, in the same order, as the two reads one after the other.
TEST_F(RedisEngineTest, ATokenCheckInOneRoundTripAnswersAsTwoReads) {
  storage::RedisTokenRecords both(node_a_->redis);
  auth::JwtCodec jwt("test-secret-0123456789abcdef0123456789abcdef");
  auth::Authenticator one_trip(*node_a_->users, jwt, *node_a_->kv, clock_, &both);
  auth::Authenticator two_reads(*node_a_->users, jwt, *node_a_->kv, clock_);
  auth::User user;
  user.user_id = "u1";
  user.username = "alice";
  user.is_active = true;
  user.permissions = {"read"};
  ASSERT_TRUE(node_a_->users->Create(user).ok());
  auto token_for = [&](std::string sub, std::string jti) {
    auth::AccessClaims claims;
    claims.sub = std::move(sub);
    claims.username = "alice";
    claims.exp = clock_.NowSeconds() + 600;
    claims.iat = clock_.NowSeconds();
    claims.jti = std::move(jti);
    return jwt.Issue(claims);
  };
  auto answers = [&](const std::string& token) {
    auto a = one_trip.Authenticate(token);
    auto b = two_reads.Authenticate(token);
    EXPECT_EQ(a.ok(), b.ok());
    if (!a.ok() || !b.ok()) {
      EXPECT_EQ(a.status().ToString(), b.status().ToString());
      return a.ok() ? std::string("ok") : a.status().message();
    }
    EXPECT_EQ(a->user.user_id, b->user.user_id);
    EXPECT_EQ(a->user.permissions, b->user.permissions);
    return std::string("ok");
  };

  EXPECT_EQ(answers(token_for("u1", "jti-1")), "ok");
  EXPECT_EQ(answers(token_for("u1", "")), "ok");  // no jti: only the user is read
  EXPECT_EQ(answers(token_for("nobody", "jti-2")), "User not found");
  auth::AccessClaims revoked;
  revoked.jti = "jti-1";
  revoked.exp = clock_.NowSeconds() + 600;
  ASSERT_TRUE(one_trip.Revoke(revoked).ok());
  EXPECT_EQ(answers(token_for("u1", "jti-1")), "Token has been revoked");
  // Revoked and without a user: the deny-list answers first, as in the spec's order.
  ASSERT_TRUE(one_trip.Revoke({.sub = "nobody", .exp = clock_.NowSeconds() + 600, .jti = "jti-3"}).ok());
  EXPECT_EQ(answers(token_for("nobody", "jti-3")), "Token has been revoked");
  user.is_active = false;
  ASSERT_TRUE(node_a_->users->Update(user).ok());
  EXPECT_EQ(answers(token_for("u1", "jti-4")), "User is inactive");
}

TEST(RedisOpenTest, AnUnreachableRedisIsRefusedWithTheReason) {
  storage::RedisOptions options;
  options.endpoint = *storage::ParseRedisUrl("redis://user:s3cret@127.0.0.1:1");
  options.connect_timeout = std::chrono::milliseconds(300);
  auto engine = storage::RedisEngine::Open(options, SystemClock::Instance());
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(engine.status().message().find("127.0.0.1:1"), std::string::npos)
      << engine.status().message();
  EXPECT_EQ(engine.status().message().find("s3cret"), std::string::npos);
}

TEST(RedisOpenTest, RedissWithAMissingCaFileIsRefusedNamingTheFile) {
  storage::RedisOptions options;
  options.endpoint = *storage::ParseRedisUrl("rediss://127.0.0.1:6380");
  options.tls_ca_file = "/nonexistent/ca.pem";
  auto engine = storage::RedisEngine::Open(options, SystemClock::Instance());
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(engine.status().message().find("/nonexistent/ca.pem"), std::string::npos);
}

TEST(RedisOpenTest, RedissToAPlainRedisFailsTheHandshake) {
  auto url = TestRedisUrl();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  storage::RedisOptions options;
  options.endpoint = *storage::ParseRedisUrl("rediss://" + url->substr(8));
  // A plain Redis waits for a line that a ClientHello never ends: the set-up timeout ends it.
  options.connect_timeout = std::chrono::milliseconds(3000);
  auto engine = storage::RedisEngine::Open(options, SystemClock::Instance());
  ASSERT_FALSE(engine.ok());
  EXPECT_NE(engine.status().message().find("TLS handshake"), std::string::npos)
      << engine.status().message();
}

// --- Shared limits (D13): rate windows and connection slots that hold across nodes ---

using WindowDecision = core::SharedLimits::WindowDecision;

Result<WindowDecision> CountSync(core::SharedLimits& limits, const std::string& key, int64_t limit,
                                 int64_t cost, int64_t window_ms = 60000) {
  std::promise<Result<WindowDecision>> done;
  auto future = done.get_future();
  limits.CountInWindow(key, limit, cost, window_ms,
                       [&done](Result<WindowDecision> r) { done.set_value(std::move(r)); });
  return future.get();
}

Result<bool> AcquireSync(core::SharedLimits& limits, const std::string& key, int64_t cap) {
  std::promise<Result<bool>> done;
  auto future = done.get_future();
  limits.AcquireSlot(key, cap, [&done](Result<bool> r) { done.set_value(std::move(r)); });
  return future.get();
}

class RedisSharedLimitsTest : public RedisEngineTest {
 protected:
  std::shared_ptr<storage::RedisSharedLimits> Limits(TestEngine& node,
                                                     std::chrono::milliseconds lease) {
    auto limits = storage::RedisSharedLimits::Start(node.redis, lease);
    started_.push_back(limits);
    engines_.push_back(node.redis);
    return limits;
  }
  // As the server does: the limits, then the engines (their io threads end here, not in a
  // destructor that the last reference might run on that very thread).
  void TearDown() override {
    for (auto& l : started_) l->Stop();
    for (auto& e : engines_) e->Stop();
  }
  std::vector<std::shared_ptr<storage::RedisEngine>> engines_;
  std::vector<std::shared_ptr<storage::RedisSharedLimits>> started_;
};

TEST_F(RedisSharedLimitsTest, AWindowIsSharedByEveryNode) {
  auto node_b = SecondNode();
  ASSERT_TRUE(node_b);
  auto a = Limits(*node_a_, std::chrono::seconds(15));
  auto b = Limits(*node_b, std::chrono::seconds(15));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(CountSync(*a, "publish:1.2.3.4", 5, 1)->allowed);
  EXPECT_TRUE(CountSync(*b, "publish:1.2.3.4", 5, 1)->allowed);
  // A cost that would pass the limit is refused and counts nothing; one that fits passes.
  EXPECT_FALSE(CountSync(*b, "publish:1.2.3.4", 5, 2)->allowed);
  EXPECT_TRUE(CountSync(*b, "publish:1.2.3.4", 5, 0)->allowed);  // asking: one left
  EXPECT_TRUE(CountSync(*b, "publish:1.2.3.4", 5, 1)->allowed);
  for (auto* node : {a.get(), b.get()}) {
    auto refused = CountSync(*node, "publish:1.2.3.4", 5, 1);
    ASSERT_TRUE(refused.ok()) << refused.status().ToString();
    EXPECT_FALSE(refused->allowed);
    EXPECT_GT(refused->retry_after_ms, 0);
    EXPECT_LE(refused->retry_after_ms, 60000);
  }
  EXPECT_FALSE(CountSync(*a, "publish:1.2.3.4", 5, 0)->allowed);  // asking, when full
  // Another key (client, route) has its own window.
  EXPECT_TRUE(CountSync(*b, "publish:5.6.7.8", 5, 1)->allowed);
}

TEST_F(RedisSharedLimitsTest, AWindowEndsAndStartsAgain) {
  auto a = Limits(*node_a_, std::chrono::seconds(15));
  EXPECT_TRUE(CountSync(*a, "login:x", 1, 1, 200)->allowed);
  EXPECT_FALSE(CountSync(*a, "login:x", 1, 1, 200)->allowed);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(CountSync(*a, "login:x", 1, 1, 200)->allowed);
}

TEST_F(RedisSharedLimitsTest, SlotsAreCappedAcrossNodesAndComeBackOnRelease) {
  auto node_b = SecondNode();
  ASSERT_TRUE(node_b);
  auto a = Limits(*node_a_, std::chrono::seconds(15));
  auto b = Limits(*node_b, std::chrono::seconds(15));
  EXPECT_TRUE(*AcquireSync(*a, "ws:u1", 2));
  EXPECT_TRUE(*AcquireSync(*b, "ws:u1", 2));
  EXPECT_FALSE(*AcquireSync(*a, "ws:u1", 2));
  EXPECT_FALSE(*AcquireSync(*b, "ws:u1", 2));
  EXPECT_TRUE(*AcquireSync(*a, "ws:u2", 2));  // another user
  b->ReleaseSlot("ws:u1");
  b->ReleaseSlot("ws:u1");  // never held twice: ignored, a's slot stays counted
  // The release is sent on b's connection, without a reply to wait for: a sees it shortly.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool taken = false;
  while (!taken && std::chrono::steady_clock::now() < deadline) {
    taken = *AcquireSync(*a, "ws:u1", 2);
    if (!taken) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(taken);
  EXPECT_FALSE(*AcquireSync(*b, "ws:u1", 2));
  EXPECT_FALSE(*AcquireSync(*a, "ws:u1", 2));
}

TEST_F(RedisSharedLimitsTest, ALiveNodeKeepsItsSlotsADeadOnesComeFreeAfterTheLease) {
  auto node_b = SecondNode();
  ASSERT_TRUE(node_b);
  const auto lease = std::chrono::milliseconds(400);
  auto a = Limits(*node_a_, lease);
  auto b = Limits(*node_b, lease);
  EXPECT_TRUE(*AcquireSync(*a, "poll:u1", 2));
  EXPECT_TRUE(*AcquireSync(*b, "poll:u1", 2));
  // Both renew their leases: after several leases the slots are still held.
  std::this_thread::sleep_for(lease * 3);
  EXPECT_FALSE(*AcquireSync(*a, "poll:u1", 2));
  // b stops renewing (a node that died): once its lease is over, its slot is free again.
  b->Stop();
  node_b.reset();
  const auto deadline = std::chrono::steady_clock::now() + lease * 5;
  bool freed = false;
  while (!freed && std::chrono::steady_clock::now() < deadline) {
    freed = *AcquireSync(*a, "poll:u1", 2);
    if (!freed) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(freed);
  EXPECT_FALSE(*AcquireSync(*a, "poll:u1", 2));  // a's two
}

TEST_F(RedisSharedLimitsTest, RedisDownIsUnavailableNotAllowed) {
  auto a = Limits(*node_a_, std::chrono::seconds(15));
  ASSERT_TRUE(StopTestRedis().ok());
  auto window = CountSync(*a, "publish:x", 5, 1);
  auto slot = AcquireSync(*a, "ws:x", 2);
  ASSERT_TRUE(StartTestRedis().ok());
  ASSERT_FALSE(window.ok());
  EXPECT_EQ(window.status().code(), StatusCode::kUnavailable);
  ASSERT_FALSE(slot.ok());
  EXPECT_EQ(slot.status().code(), StatusCode::kUnavailable);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!node_a_->redis->Health().ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto again = CountSync(*a, "publish:x", 5, 1);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->allowed);
}

}  // namespace
}  // namespace magnetar::contract
