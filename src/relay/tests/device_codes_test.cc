#include "relay/device_codes.h"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <regex>
#include <set>
#include <thread>
#include <vector>

#include "storage/memory/memory_kv_store.h"

namespace magnetar::relay {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Kind = DevicePoll::Kind;

TEST(UserCodeTest, GeneratedCodesHaveTheFormatAndUseTheWholeAlphabet) {
  const std::regex format("^[BCDFGHJKLMNPQRSTVWXZ2-9]{4}-[BCDFGHJKLMNPQRSTVWXZ2-9]{4}$");
  std::set<char> seen;
  std::set<std::string> codes;
  for (int i = 0; i < 2000; ++i) {
    const std::string code = GenerateUserCode();
    ASSERT_TRUE(std::regex_match(code, format)) << code;
    for (char c : code) seen.insert(c);
    codes.insert(code);
  }
  seen.erase('-');
  EXPECT_EQ(seen.size(), kUserCodeAlphabet.size());  // 16000 draws: every symbol shows up
  EXPECT_GT(codes.size(), 1990u);                     // 28^8 codes: collisions are rare
}

TEST(UserCodeTest, NormalizeAcceptsWhatPeopleType) {
  EXPECT_EQ(NormalizeUserCode("BCDF-GHJK"), "BCDF-GHJK");
  EXPECT_EQ(NormalizeUserCode("bcdf-ghjk"), "BCDF-GHJK");
  EXPECT_EQ(NormalizeUserCode("bcdfghjk"), "BCDF-GHJK");
  EXPECT_EQ(NormalizeUserCode("  bcdf ghjk "), "BCDF-GHJK");
  EXPECT_EQ(NormalizeUserCode("b-c-d-f-2-3-4-5"), "BCDF-2345");
}

TEST(UserCodeTest, NormalizeRefusesAnythingElse) {
  for (const char* bad : {"", "-", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "0000-1111",
                          "BCDF_GHJK", "BCDF-GHJ!", "BCDF%2DGHJK", "ÄBCD-GHJK"}) {
    EXPECT_FALSE(NormalizeUserCode(bad).has_value()) << bad;
  }
  EXPECT_FALSE(NormalizeUserCode(std::string(1000, '-') + "BCDFGHJK").has_value());
}

TEST(ValidUtf8Test, KeepsWellFormedTextAndReplacesTheRest) {
  EXPECT_EQ(ValidUtf8("plain ascii"), "plain ascii");
  const std::string mixed = "h\xC3\xA9llo \xE6\x97\xA5 \xF0\x9F\x98\x80";  // 2, 3, 4 bytes
  EXPECT_EQ(ValidUtf8(mixed), mixed);
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(ValidUtf8("a\xFF" "b"), "a" + fffd + "b");                  // never valid
  EXPECT_EQ(ValidUtf8("\xC3"), fffd);                                // truncated
  EXPECT_EQ(ValidUtf8("\xC0\xAF"), fffd + fffd);                     // overlong '/'
  EXPECT_EQ(ValidUtf8("\xED\xA0\x80"), fffd + fffd + fffd);          // a surrogate
  EXPECT_EQ(ValidUtf8("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // past U+10FFFF
}

TEST(DeviceRecordTest, SerializeParseRoundTrip) {
  DeviceRecord r;
  r.device_hash = std::string(64, 'a');
  r.user_code = "BCDF-GHJK";
  r.client_hint = "pulsar-config on host \"x\"";
  r.pair = true;
  r.status = DeviceStatus::kApproved;
  r.issued_at = 1'700'000'000'123'456;
  r.expires_at = r.issued_at + 600'000'000;
  r.interval_seconds = 15;
  r.last_polled_at = r.issued_at + 5'000'000;
  r.user_id = "user-1";
  r.decided_at = r.issued_at + 7'000'000;
  auto parsed = ParseDeviceRecord(SerializeDeviceRecord(r));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(SerializeDeviceRecord(*parsed), SerializeDeviceRecord(r));
  EXPECT_EQ(parsed->client_hint, r.client_hint);
  EXPECT_EQ(parsed->status, DeviceStatus::kApproved);
  EXPECT_EQ(parsed->interval_seconds, 15);

  r.client_hint.reset();
  r.last_polled_at.reset();
  parsed = ParseDeviceRecord(SerializeDeviceRecord(r));
  ASSERT_TRUE(parsed);
  EXPECT_FALSE(parsed->client_hint);
  EXPECT_FALSE(parsed->last_polled_at);

  EXPECT_FALSE(ParseDeviceRecord("not json"));
  EXPECT_FALSE(ParseDeviceRecord(R"({"device_hash":"x"})"));
}

class DeviceCodesTest : public ::testing::Test {
 protected:
  DeviceAuthorization Create(std::optional<std::string> hint = "cli", bool pair = false) {
    auto created = codes_.Create(std::move(hint), pair);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? *created : DeviceAuthorization{};
  }
  DevicePoll Poll(const std::string& device_code) {
    auto poll = codes_.Poll(device_code);
    EXPECT_TRUE(poll.ok()) << poll.status().ToString();
    return poll.ok() ? *poll : DevicePoll{};
  }

  ManualClock clock_;
  storage::MemoryKvStore kv_{clock_};
  DeviceCodes codes_{kv_, clock_, DeviceCodeOptions{600, 5}};
};

TEST_F(DeviceCodesTest, CreateStoresOnlyTheHashOfTheDeviceCode) {
  const DeviceAuthorization a = Create("cli", true);
  EXPECT_TRUE(std::regex_match(a.device_code, std::regex("^[A-Za-z0-9_-]{43}$")));
  EXPECT_EQ(a.record.status, DeviceStatus::kPending);
  EXPECT_EQ(a.record.expires_at - a.record.issued_at, 600'000'000);
  EXPECT_EQ(a.record.interval_seconds, 5);
  EXPECT_TRUE(a.record.pair);
  // The record is under the hash; nothing is keyed by, or contains, the wire device_code.
  EXPECT_FALSE(kv_.Get(kDeviceCodeKeyPrefix + a.device_code)->has_value());
  auto stored = kv_.Get(kDeviceCodeKeyPrefix + a.record.device_hash);
  ASSERT_TRUE(stored->has_value());
  EXPECT_EQ(stored->value().find(a.device_code), std::string::npos);
  EXPECT_EQ(**kv_.Get(kDeviceUserCodeKeyPrefix + a.record.user_code), a.record.device_hash);
  EXPECT_NE(Create().device_code, a.device_code);
}

TEST_F(DeviceCodesTest, AHintThatIsNotUtf8IsStoredReadably) {
  const DeviceAuthorization a = Create(std::string("latin-1 caf\xE9 \xFF"));
  EXPECT_EQ(a.record.client_hint, "latin-1 caf\xEF\xBF\xBD \xEF\xBF\xBD");
  EXPECT_EQ(Poll(a.device_code).kind, Kind::kPending);  // the record reads back
  auto found = codes_.FindPending(a.record.user_code);
  ASSERT_TRUE(found.ok() && *found);
  EXPECT_EQ((*found)->client_hint, a.record.client_hint);
}

TEST_F(DeviceCodesTest, PendingThenApprovedThenConsumedOnce) {
  const DeviceAuthorization a = Create();
  EXPECT_EQ(Poll("no-such-code").kind, Kind::kUnknown);
  EXPECT_EQ(Poll(std::string(500, 'x')).kind, Kind::kUnknown);
  EXPECT_EQ(Poll(a.device_code).kind, Kind::kPending);

  auto found = codes_.FindPending(a.record.user_code);
  ASSERT_TRUE(found.ok() && *found);
  EXPECT_EQ((*found)->client_hint, "cli");
  ASSERT_TRUE(codes_.Approve(a.record.user_code, "user-1").ok());
  EXPECT_FALSE(*codes_.FindPending(a.record.user_code));
  EXPECT_EQ(codes_.Approve(a.record.user_code, "user-1").code(), StatusCode::kNotFound);
  EXPECT_EQ(codes_.Deny(a.record.user_code, "user-2").code(), StatusCode::kNotFound);

  clock_.Advance(seconds(5));
  const DevicePoll approved = Poll(a.device_code);
  ASSERT_EQ(approved.kind, Kind::kApproved);
  EXPECT_EQ(approved.record.user_id, "user-1");
  EXPECT_TRUE(*codes_.Consume(approved));
  EXPECT_FALSE(*codes_.Consume(approved));  // single use
  clock_.Advance(seconds(5));
  EXPECT_EQ(Poll(a.device_code).kind, Kind::kUnknown);
  EXPECT_FALSE(kv_.Get(kDeviceUserCodeKeyPrefix + a.record.user_code)->has_value());
}

TEST_F(DeviceCodesTest, SlowDownRaisesTheIntervalAndTheNextPollMustRespectIt) {
  const DeviceAuthorization a = Create();
  EXPECT_EQ(Poll(a.device_code).kind, Kind::kPending);
  clock_.Advance(seconds(1));
  DevicePoll p = Poll(a.device_code);
  EXPECT_EQ(p.kind, Kind::kSlowDown);
  EXPECT_EQ(p.record.interval_seconds, 10);
  // The old interval has passed, the raised one has not: still too fast, raised again.
  clock_.Advance(seconds(6));
  p = Poll(a.device_code);
  EXPECT_EQ(p.kind, Kind::kSlowDown);
  EXPECT_EQ(p.record.interval_seconds, 15);
  clock_.Advance(seconds(15));
  p = Poll(a.device_code);
  EXPECT_EQ(p.kind, Kind::kPending);
  EXPECT_EQ(p.record.interval_seconds, 15);  // stays raised for every later poll
  clock_.Advance(seconds(10));
  EXPECT_EQ(Poll(a.device_code).kind, Kind::kSlowDown);
}

TEST_F(DeviceCodesTest, APollJustInsideTheIntervalIsOnTime) {
  const DeviceAuthorization a = Create();
  EXPECT_EQ(Poll(a.device_code).kind, Kind::kPending);
  clock_.Advance(milliseconds(5000) - std::chrono::microseconds(kPollToleranceMicros));
  EXPECT_EQ(Poll(a.device_code).kind, Kind::kPending);
  clock_.Advance(milliseconds(4000));
  EXPECT_EQ(Poll(a.device_code).kind, Kind::kSlowDown);
}

TEST_F(DeviceCodesTest, IntervalIsCapped) {
  const DeviceAuthorization a = Create();
  EXPECT_EQ(Poll(a.device_code).kind, Kind::kPending);
  DevicePoll p;
  for (int i = 0; i < 100; ++i) p = Poll(a.device_code);
  EXPECT_EQ(p.record.interval_seconds, kMaxIntervalSeconds);
}

TEST_F(DeviceCodesTest, ApprovedCodeStillObeysTheInterval) {
  const DeviceAuthorization a = Create();
  EXPECT_EQ(Poll(a.device_code).kind, Kind::kPending);
  ASSERT_TRUE(codes_.Approve(a.record.user_code, "user-1").ok());
  EXPECT_EQ(Poll(a.device_code).kind, Kind::kSlowDown);
  clock_.Advance(seconds(10));
  EXPECT_EQ(Poll(a.device_code).kind, Kind::kApproved);
}

TEST_F(DeviceCodesTest, DeniedIsReportedOnceThenUnknown) {
  const DeviceAuthorization a = Create();
  ASSERT_TRUE(codes_.Deny(a.record.user_code, "user-1").ok());
  EXPECT_EQ(codes_.Approve(a.record.user_code, "user-1").code(), StatusCode::kNotFound);
  EXPECT_EQ(Poll(a.device_code).kind, Kind::kDenied);
  EXPECT_EQ(Poll(a.device_code).kind, Kind::kUnknown);
}

TEST_F(DeviceCodesTest, ExpiryEndsEverythingAndTheStoreForgetsTheRecords) {
  const DeviceAuthorization a = Create();
  clock_.Advance(seconds(600));
  EXPECT_FALSE(*codes_.FindPending(a.record.user_code));
  EXPECT_EQ(codes_.Approve(a.record.user_code, "user-1").code(), StatusCode::kNotFound);
  EXPECT_EQ(Poll(a.device_code).kind, Kind::kExpired);
  EXPECT_EQ(Poll(a.device_code).kind, Kind::kExpired);  // persisted as expired
  clock_.Advance(seconds(61));
  kv_.Sweep(clock_.Now());
  EXPECT_FALSE(kv_.Get(kDeviceCodeKeyPrefix + a.record.device_hash)->has_value());
  EXPECT_FALSE(kv_.Get(kDeviceUserCodeKeyPrefix + a.record.user_code)->has_value());
  EXPECT_EQ(Poll(a.device_code).kind, Kind::kUnknown);
}

TEST_F(DeviceCodesTest, AnApprovalAfterExpiryIsRefusedEvenBeforeAnyPoll) {
  const DeviceAuthorization a = Create();
  clock_.Advance(seconds(599));
  ASSERT_TRUE(codes_.Approve(a.record.user_code, "user-1").ok());  // one second left: fine
  const DeviceAuthorization b = Create();
  clock_.Advance(seconds(600));
  EXPECT_EQ(codes_.Deny(b.record.user_code, "user-1").code(), StatusCode::kNotFound);
}

TEST_F(DeviceCodesTest, ConcurrentConsumersOfOneApprovalHaveExactlyOneWinner) {
  const DeviceAuthorization a = Create();
  ASSERT_TRUE(codes_.Approve(a.record.user_code, "user-1").ok());
  constexpr int kThreads = 8;
  std::latch start(kThreads);
  std::atomic<int> winners{0}, approvals{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      auto poll = codes_.Poll(a.device_code);
      if (!poll.ok() || poll->kind != Kind::kApproved) return;
      ++approvals;
      auto won = codes_.Consume(*poll);
      if (won.ok() && *won) ++winners;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GE(approvals.load(), 1);
  EXPECT_EQ(winners.load(), 1);
}

TEST_F(DeviceCodesTest, ConcurrentApproveAndDenyHaveOneWinner) {
  for (int round = 0; round < 20; ++round) {
    const DeviceAuthorization a = Create();
    std::latch start(2);
    Status approve, deny;
    std::thread t1([&] {
      start.arrive_and_wait();
      approve = codes_.Approve(a.record.user_code, "user-1");
    });
    std::thread t2([&] {
      start.arrive_and_wait();
      deny = codes_.Deny(a.record.user_code, "user-2");
    });
    t1.join();
    t2.join();
    EXPECT_NE(approve.ok(), deny.ok()) << approve.ToString() << " / " << deny.ToString();
    const Kind kind = Poll(a.device_code).kind;
    EXPECT_EQ(kind, approve.ok() ? Kind::kApproved : Kind::kDenied);
  }
}

}  // namespace
}  // namespace magnetar::relay
