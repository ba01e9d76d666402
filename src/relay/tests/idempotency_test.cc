#include "relay/idempotency.h"

#include <gtest/gtest.h>

#include "storage/memory/memory_kv_store.h"

namespace magnetar::relay {
namespace {

using Verdict = IdempotencyGate::Verdict;
constexpr int kTtlSeconds = 600;

class IdempotencyGateTest : public ::testing::Test {
 protected:
  ManualClock clock_;
  storage::MemoryKvStore kv_{clock_};
  IdempotencyGate gate_{kv_, clock_, kTtlSeconds};
  const std::string key_ = IdempotencyGate::ScopedKey("single", "user-1", "k-123");
  const std::string body_a_ = IdempotencyGate::Fingerprint(R"({"topic":"t","payload":{"n":1}})");
  const std::string body_b_ = IdempotencyGate::Fingerprint(R"({"topic":"t","payload":{"n":2}})");
};

TEST_F(IdempotencyGateTest, FingerprintIsSha256Hex) {
  EXPECT_EQ(IdempotencyGate::Fingerprint(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(body_a_.size(), 64u);
  EXPECT_NE(body_a_, body_b_);
  EXPECT_EQ(body_a_, IdempotencyGate::Fingerprint(R"({"topic":"t","payload":{"n":1}})"));
}

TEST_F(IdempotencyGateTest, FirstClaimProceeds) {
  auto check = gate_.Claim(key_, body_a_);
  EXPECT_EQ(check.verdict, Verdict::kProceed);
  EXPECT_TRUE(check.response.empty());
}

TEST_F(IdempotencyGateTest, DuplicateWhileInFlight) {
  ASSERT_EQ(gate_.Claim(key_, body_a_).verdict, Verdict::kProceed);
  EXPECT_EQ(gate_.Claim(key_, body_a_).verdict, Verdict::kInFlight);
  EXPECT_EQ(gate_.Claim(key_, body_a_).verdict, Verdict::kInFlight);
}

TEST_F(IdempotencyGateTest, DifferentBodyIsMismatch) {
  ASSERT_EQ(gate_.Claim(key_, body_a_).verdict, Verdict::kProceed);
  EXPECT_EQ(gate_.Claim(key_, body_b_).verdict, Verdict::kMismatch);  // in flight
  gate_.Complete(key_, body_a_, R"({"message_id":"1-0"})");
  EXPECT_EQ(gate_.Claim(key_, body_b_).verdict, Verdict::kMismatch);  // done
}

TEST_F(IdempotencyGateTest, CompletedIsReplayedVerbatim) {
  ASSERT_EQ(gate_.Claim(key_, body_a_).verdict, Verdict::kProceed);
  const std::string response =
      "{\"message_id\":\"1-0\",\"topic\":\"t\",\n\"timestamp\":\"2023-11-14T22:13:20.000000Z\"}";
  gate_.Complete(key_, body_a_, response);
  auto check = gate_.Claim(key_, body_a_);
  EXPECT_EQ(check.verdict, Verdict::kReplay);
  EXPECT_EQ(check.response, response);
  // Replays do not consume the record.
  check = gate_.Claim(key_, body_a_);
  EXPECT_EQ(check.verdict, Verdict::kReplay);
  EXPECT_EQ(check.response, response);
}

TEST_F(IdempotencyGateTest, EmptyResponseIsReplayedToo) {
  ASSERT_EQ(gate_.Claim(key_, body_a_).verdict, Verdict::kProceed);
  gate_.Complete(key_, body_a_, "");
  auto check = gate_.Claim(key_, body_a_);
  EXPECT_EQ(check.verdict, Verdict::kReplay);
  EXPECT_EQ(check.response, "");
}

TEST_F(IdempotencyGateTest, ReleaseFreesTheKey) {
  ASSERT_EQ(gate_.Claim(key_, body_a_).verdict, Verdict::kProceed);
  gate_.Release(key_);
  EXPECT_EQ(gate_.Claim(key_, body_a_).verdict, Verdict::kProceed);
  gate_.Release(key_);
  // After a failure the key may be retried with another body as well.
  EXPECT_EQ(gate_.Claim(key_, body_b_).verdict, Verdict::kProceed);
}

TEST_F(IdempotencyGateTest, RecordsExpireAfterTtl) {
  ASSERT_EQ(gate_.Claim(key_, body_a_).verdict, Verdict::kProceed);
  gate_.Complete(key_, body_a_, "{}");
  clock_.Advance(std::chrono::seconds(kTtlSeconds - 1));
  EXPECT_EQ(gate_.Claim(key_, body_a_).verdict, Verdict::kReplay);
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_EQ(gate_.Claim(key_, body_b_).verdict, Verdict::kProceed);
}

TEST_F(IdempotencyGateTest, InFlightClaimsExpireToo) {
  // A request that died without Complete/Release does not block its key forever.
  ASSERT_EQ(gate_.Claim(key_, body_a_).verdict, Verdict::kProceed);
  clock_.Advance(std::chrono::seconds(kTtlSeconds));
  EXPECT_EQ(gate_.Claim(key_, body_a_).verdict, Verdict::kProceed);
}

TEST_F(IdempotencyGateTest, CompleteRestartsTheWindow) {
  ASSERT_EQ(gate_.Claim(key_, body_a_).verdict, Verdict::kProceed);
  clock_.Advance(std::chrono::seconds(500));
  gate_.Complete(key_, body_a_, "{}");
  clock_.Advance(std::chrono::seconds(500));
  EXPECT_EQ(gate_.Claim(key_, body_a_).verdict, Verdict::kReplay);
}

TEST_F(IdempotencyGateTest, ScopedKeyDiffersPerRouteAndUser) {
  const std::string single = IdempotencyGate::ScopedKey("single", "u1", "k");
  const std::string bulk = IdempotencyGate::ScopedKey("bulk", "u1", "k");
  const std::string other_user = IdempotencyGate::ScopedKey("single", "u2", "k");
  const std::string other_key = IdempotencyGate::ScopedKey("single", "u1", "k2");
  EXPECT_NE(single, bulk);
  EXPECT_NE(single, other_user);
  EXPECT_NE(single, other_key);
  EXPECT_EQ(single, IdempotencyGate::ScopedKey("single", "u1", "k"));
  EXPECT_EQ(single.rfind("idem:", 0), 0u);

  // D7: one key on both routes, or for two users, is two independent records.
  ASSERT_EQ(gate_.Claim(single, body_a_).verdict, Verdict::kProceed);
  gate_.Complete(single, body_a_, "single-response");
  EXPECT_EQ(gate_.Claim(bulk, body_a_).verdict, Verdict::kProceed);
  EXPECT_EQ(gate_.Claim(other_user, body_a_).verdict, Verdict::kProceed);
  EXPECT_EQ(gate_.Claim(single, body_a_).response, "single-response");
}

}  // namespace
}  // namespace magnetar::relay
