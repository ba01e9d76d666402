#include "pulsar/codec/batch.h"

#include <gtest/gtest.h>

namespace magnetar::pulsar {
namespace {

BatchEntry Entry(std::string payload, std::string key) {
  BatchEntry e;
  e.metadata.set_payload_size(static_cast<int32_t>(payload.size()));
  if (!key.empty()) e.metadata.set_partition_key(key);
  auto* kv = e.metadata.add_properties();
  kv->set_key("n");
  kv->set_value(payload);
  e.metadata_bytes = e.metadata.SerializeAsString();
  e.payload = std::move(payload);
  return e;
}

TEST(Batch, RoundTripKeepsEntriesIntact) {
  std::vector<BatchEntry> in = {Entry("one", "a"), Entry("", ""), Entry("three", "c")};
  const std::string wire = EncodeBatch(in);
  auto out = ParseBatch(wire, 3);
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->size(), 3u);
  EXPECT_EQ((*out)[0].payload, "one");
  EXPECT_EQ((*out)[0].metadata.partition_key(), "a");
  EXPECT_EQ((*out)[1].payload, "");
  EXPECT_EQ((*out)[2].metadata.properties(0).value(), "three");
  EXPECT_EQ(EncodeBatch(*out), wire);
}

TEST(Batch, CountMismatchAndTruncationAreErrors) {
  const std::string wire = EncodeBatch({Entry("one", "a"), Entry("two", "b")});
  EXPECT_FALSE(ParseBatch(wire, 3).ok());
  auto extra = ParseBatch(wire, 1);
  ASSERT_FALSE(extra.ok());
  EXPECT_NE(extra.status().message().find("left after"), std::string::npos);
  auto cut = ParseBatch(std::string_view(wire).substr(0, wire.size() - 1), 2);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.status().message().find("batch entry 1"), std::string::npos)
      << cut.status().message();
  EXPECT_FALSE(ParseBatch(wire, -1).ok());
  EXPECT_FALSE(ParseBatch(wire, kMaxBatchMessages + 1).ok());
}

TEST(Batch, LyingPayloadSizeIsAnError) {
  BatchEntry e = Entry("abc", "");
  e.metadata.set_payload_size(1000);
  e.metadata_bytes = e.metadata.SerializeAsString();
  EXPECT_FALSE(ParseBatch(EncodeBatch({e}), 1).ok());
  e.metadata.set_payload_size(-5);
  e.metadata_bytes = e.metadata.SerializeAsString();
  EXPECT_FALSE(ParseBatch(EncodeBatch({e}), 1).ok());
}

}  // namespace
}  // namespace magnetar::pulsar
