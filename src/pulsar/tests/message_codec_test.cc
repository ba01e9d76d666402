#include "pulsar/message_codec.h"

#include <gtest/gtest.h>

#include "pulsar/codec/batch.h"
#include "pulsar/codec/compression.h"
#include "pulsar_ws/frames.h"

namespace magnetar::pulsar {
namespace {

Frame SendFrame(proto::MessageMetadata md, std::string payload) {
  Frame f;
  f.command = MakeCommand(proto::BaseCommand::SEND);
  f.command.mutable_send()->set_producer_id(0);
  f.command.mutable_send()->set_sequence_id(md.sequence_id());
  f.has_payload = true;
  f.metadata_bytes = md.SerializeAsString();
  f.metadata = std::move(md);
  f.payload = std::move(payload);
  return f;
}

proto::MessageMetadata Metadata(uint64_t seq) {
  proto::MessageMetadata md;
  md.set_producer_name("prod-1");
  md.set_sequence_id(seq);
  md.set_publish_time(1700000000000);
  return md;
}

TEST(MessageCodec, SingleMessageBecomesOneDraft) {
  proto::MessageMetadata md = Metadata(7);
  auto* kv = md.add_properties();
  kv->set_key("color");
  kv->set_value("red");
  md.set_partition_key("k1");
  md.set_event_time(1234);
  SendDrafts out = DraftsFromSend(SendFrame(md, "hello"), "fallback");
  ASSERT_EQ(out.drafts.size(), 1u) << out.message;
  const core::Message& m = *out.drafts[0];
  EXPECT_EQ(m.payload, "hello");
  EXPECT_EQ(m.format, core::PayloadFormat::kBinary);
  EXPECT_EQ(m.key, "k1");
  EXPECT_EQ(m.producer_name, "prod-1");
  EXPECT_EQ(m.sequence_id, 7u);
  ASSERT_EQ(m.properties.size(), 2u);
  EXPECT_EQ(m.properties[0], (std::pair<std::string, std::string>("color", "red")));
  EXPECT_EQ(m.properties[1].first, pulsar_ws::kEventTimeProperty);
}

TEST(MessageCodec, JsonObjectPayloadIsKeptAsJson) {
  SendDrafts out = DraftsFromSend(SendFrame(Metadata(0), R"({"n":1})"), "p");
  ASSERT_EQ(out.drafts.size(), 1u);
  EXPECT_EQ(out.drafts[0]->format, core::PayloadFormat::kJson);
  out = DraftsFromSend(SendFrame(Metadata(0), R"({"n":)"), "p");
  EXPECT_EQ(out.drafts[0]->format, core::PayloadFormat::kBinary);
}

TEST(MessageCodec, BatchIsSplitInOrder) {
  std::vector<BatchEntry> entries;
  for (int i = 0; i < 3; ++i) {
    BatchEntry e;
    e.payload = "m" + std::to_string(i);
    e.metadata.set_payload_size(static_cast<int32_t>(e.payload.size()));
    e.metadata.set_partition_key("key" + std::to_string(i));
    auto* kv = e.metadata.add_properties();
    kv->set_key("i");
    kv->set_value(std::to_string(i));
    e.metadata_bytes = e.metadata.SerializeAsString();
    entries.push_back(std::move(e));
  }
  proto::MessageMetadata md = Metadata(10);
  md.set_num_messages_in_batch(3);
  SendDrafts out = DraftsFromSend(SendFrame(md, EncodeBatch(entries)), "p");
  ASSERT_EQ(out.drafts.size(), 3u) << out.message;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(out.drafts[i]->payload, "m" + std::to_string(i));
    EXPECT_EQ(out.drafts[i]->key, "key" + std::to_string(i));
    EXPECT_EQ(out.drafts[i]->sequence_id, 10u + i);
    EXPECT_EQ(out.drafts[i]->properties[0].second, std::to_string(i));
  }
}

TEST(MessageCodec, CompressedPayloadAndBatchAreDecompressed) {
  const std::string plain(3000, 'z');
  proto::MessageMetadata md = Metadata(0);
  md.set_compression(proto::ZSTD);
  md.set_uncompressed_size(static_cast<uint32_t>(plain.size()));
  SendDrafts out = DraftsFromSend(SendFrame(md, *Compress(proto::ZSTD, plain)), "p");
  ASSERT_EQ(out.drafts.size(), 1u) << out.message;
  EXPECT_EQ(out.drafts[0]->payload, plain);

  BatchEntry e;
  e.payload = "inside";
  e.metadata.set_payload_size(6);
  e.metadata_bytes = e.metadata.SerializeAsString();
  const std::string batch = EncodeBatch({e, e});
  md = Metadata(1);
  md.set_num_messages_in_batch(2);
  md.set_compression(proto::LZ4);
  md.set_uncompressed_size(static_cast<uint32_t>(batch.size()));
  out = DraftsFromSend(SendFrame(md, *Compress(proto::LZ4, batch)), "p");
  ASSERT_EQ(out.drafts.size(), 2u) << out.message;
  EXPECT_EQ(out.drafts[1]->payload, "inside");

  md = Metadata(2);
  md.set_compression(proto::SNAPPY);
  md.set_uncompressed_size(10);
  out = DraftsFromSend(SendFrame(md, "not snappy"), "p");
  EXPECT_TRUE(out.drafts.empty());
  EXPECT_NE(out.message.find("decompress"), std::string::npos) << out.message;
}

TEST(MessageCodec, RefusalsHaveClearErrors) {
  proto::MessageMetadata md = Metadata(0);
  md.set_encryption_algo("x");
  md.add_encryption_keys()->set_key("k");
  md.mutable_encryption_keys(0)->set_value("v");
  SendDrafts out = DraftsFromSend(SendFrame(md, "x"), "p");
  EXPECT_TRUE(out.drafts.empty());
  EXPECT_EQ(out.error, proto::NotAllowedError);
  EXPECT_NE(out.message.find("Encrypted"), std::string::npos);

  md = Metadata(0);
  md.set_num_messages_in_batch(2);
  out = DraftsFromSend(SendFrame(md, "garbage"), "p");
  EXPECT_TRUE(out.drafts.empty());
  EXPECT_NE(out.message.find("Invalid batch"), std::string::npos) << out.message;
}

TEST(MessageCodec, EntryForRebuildsMetadataAndChecksum) {
  auto m = std::make_shared<core::Message>();
  m->id = {1700000000123, 4};
  m->publish_time = 1700000000123456;
  m->payload = R"({"n":1})";
  m->format = core::PayloadFormat::kJson;
  m->properties = {{"a", "b"}, {pulsar_ws::kEventTimeProperty, "99"}};
  m->key = "user-1";
  core::MessagePtr msg = m;
  EncodedEntry e = EntryFor(msg);
  EXPECT_EQ(e.crc, Crc32c(e.entry));
  EXPECT_EQ(EntryFor(msg).entry.data(), e.entry.data());  // shared while held, not rebuilt

  // Parse it back the way a client does: as the tail of a MESSAGE frame.
  proto::BaseCommand cmd = MakeCommand(proto::BaseCommand::MESSAGE);
  cmd.mutable_message()->set_consumer_id(0);
  cmd.mutable_message()->mutable_message_id()->set_ledgerid(m->id.hi);
  cmd.mutable_message()->mutable_message_id()->set_entryid(m->id.lo);
  std::string wire;
  ASSERT_TRUE(AppendPayloadCommand(wire, cmd, e.entry, e.crc));
  Frame f;
  ASSERT_EQ(ParseFrame(wire, 1 << 20, &f).status, ParseStatus::kFrame);
  EXPECT_TRUE(f.checksum_ok);
  EXPECT_EQ(f.payload, m->payload);
  EXPECT_EQ(f.metadata.producer_name(), "magnetar");  // required, even for relay messages
  EXPECT_EQ(f.metadata.publish_time(), 1700000000123u);
  EXPECT_EQ(f.metadata.partition_key(), "user-1");
  EXPECT_EQ(f.metadata.event_time(), 99u);
  ASSERT_EQ(f.metadata.properties_size(), 1);
  EXPECT_EQ(f.metadata.properties(0).key(), "a");
  EXPECT_FALSE(f.metadata.has_num_messages_in_batch());  // never looks like a batch
}

}  // namespace
}  // namespace magnetar::pulsar
