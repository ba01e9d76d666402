#include "pulsar/codec/frame.h"

#include <gtest/gtest.h>

#include <boost/crc.hpp>

namespace magnetar::pulsar {
namespace {

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

TEST(Crc32c, CheckValue) { EXPECT_EQ(Crc32c("123456789"), 0xE3069283u); }

TEST(Crc32c, Rfc3720VectorsAndEveryLengthAgreeWithBoost) {
  // RFC 3720 B.4 (iSCSI): 32 bytes of zeros, of ones, incrementing.
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(""), 0u);
  // The hardware path's 8-byte steps and byte tail, at every alignment and length up to 100.
  std::string data;
  for (int i = 0; i < 108; ++i) data.push_back(static_cast<char>(i * 37 + 11));
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t len = 0; len <= 100; ++len) {
      boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
      crc.process_bytes(data.data() + offset, len);
      ASSERT_EQ(Crc32c(std::string_view(data).substr(offset, len)), crc.checksum())
          << offset << "+" << len;
    }
  }
}

TEST(Frame, SimpleCommandRoundTrip) {
  std::string wire;
  ASSERT_TRUE(AppendCommand(wire, MakeCommand(proto::BaseCommand::PING)));
  // PING: BaseCommand{type=18} plus an empty ping field is not needed; type alone is 2 bytes.
  ASSERT_EQ(wire.size(), 8u + 2u);
  EXPECT_EQ(wire.substr(0, 8), Bytes({0, 0, 0, 6, 0, 0, 0, 2}));
  Frame f;
  ParseResult r = ParseFrame(wire, 1024, &f);
  ASSERT_EQ(r.status, ParseStatus::kFrame) << r.error;
  EXPECT_EQ(r.consumed, wire.size());
  EXPECT_EQ(f.command.type(), proto::BaseCommand::PING);
  EXPECT_FALSE(f.has_payload);
}

TEST(Frame, RequiredZeroFieldsAreOnTheWire) {
  // request_id 0 is a real id (pulsar-flex starts at 0): it must be encoded, not skipped.
  proto::BaseCommand c = MakeSuccess(0);
  std::string wire;
  ASSERT_TRUE(AppendCommand(wire, c));
  Frame f;
  ASSERT_EQ(ParseFrame(wire, 1024, &f).status, ParseStatus::kFrame);
  ASSERT_TRUE(f.command.has_success());
  EXPECT_TRUE(f.command.success().has_request_id());
  EXPECT_EQ(f.command.success().request_id(), 0u);
}

TEST(Frame, MissingRequiredFieldRefusedOnSend) {
  proto::BaseCommand c = MakeCommand(proto::BaseCommand::SUCCESS);
  c.mutable_success();  // no request_id
  std::string wire;
  EXPECT_FALSE(AppendCommand(wire, c));
}

TEST(Frame, PartialFramesNeedMore) {
  std::string wire;
  ASSERT_TRUE(AppendCommand(wire, MakeError(7, proto::TopicNotFound, "no such topic")));
  for (size_t n = 0; n < wire.size(); ++n) {
    Frame f;
    EXPECT_EQ(ParseFrame(std::string_view(wire).substr(0, n), 1024, &f).status,
              ParseStatus::kNeedMore)
        << n;
  }
  Frame f;
  ASSERT_EQ(ParseFrame(wire, 1024, &f).status, ParseStatus::kFrame);
  EXPECT_EQ(f.command.error().request_id(), 7u);
  EXPECT_EQ(f.command.error().error(), proto::TopicNotFound);
  EXPECT_EQ(f.command.error().message(), "no such topic");
}

TEST(Frame, CoalescedFramesParseOneAtATime) {
  std::string wire;
  ASSERT_TRUE(AppendCommand(wire, MakeCommand(proto::BaseCommand::PING)));
  ASSERT_TRUE(AppendCommand(wire, MakeCommand(proto::BaseCommand::PONG)));
  Frame f;
  ParseResult r = ParseFrame(wire, 1024, &f);
  ASSERT_EQ(r.status, ParseStatus::kFrame);
  EXPECT_EQ(f.command.type(), proto::BaseCommand::PING);
  r = ParseFrame(std::string_view(wire).substr(r.consumed), 1024, &f);
  ASSERT_EQ(r.status, ParseStatus::kFrame);
  EXPECT_EQ(f.command.type(), proto::BaseCommand::PONG);
}

TEST(Frame, OversizedFrameIsAnErrorBeforeItArrives) {
  Frame f;
  ParseResult r = ParseFrame(Bytes({0, 0x60, 0, 0}), kDefaultMaxMessageSize + kFramePadding, &f);
  EXPECT_EQ(r.status, ParseStatus::kError);
  EXPECT_NE(r.error.find("over the limit"), std::string::npos);
}

TEST(Frame, BadSizesAreErrors) {
  Frame f;
  EXPECT_EQ(ParseFrame(Bytes({0, 0, 0, 2, 0, 0}), 1024, &f).status, ParseStatus::kError);
  // commandSize larger than the frame.
  EXPECT_EQ(ParseFrame(Bytes({0, 0, 0, 5, 0, 0, 0, 9, 0}), 1024, &f).status, ParseStatus::kError);
  // A command that is not a BaseCommand (type missing).
  ParseResult r = ParseFrame(Bytes({0, 0, 0, 6, 0, 0, 0, 2, 0x10, 0x01}), 1024, &f);
  EXPECT_EQ(r.status, ParseStatus::kError);
  EXPECT_NE(r.error.find("BaseCommand"), std::string::npos) << r.error;
}

proto::MessageMetadata SampleMetadata() {
  proto::MessageMetadata m;
  m.set_producer_name("p");
  m.set_sequence_id(0);
  m.set_publish_time(1700000000000);
  auto* kv = m.add_properties();
  kv->set_key("k");
  kv->set_value("v");
  m.set_partition_key("key-1");
  return m;
}

proto::BaseCommand SampleSend() {
  proto::BaseCommand c = MakeCommand(proto::BaseCommand::SEND);
  c.mutable_send()->set_producer_id(0);
  c.mutable_send()->set_sequence_id(3);
  return c;
}

TEST(Frame, PayloadCommandRoundTripWithChecksum) {
  std::string entry = EncodeEntry(SampleMetadata().SerializeAsString(), "hello");
  std::string wire;
  ASSERT_TRUE(AppendPayloadCommand(wire, SampleSend(), entry));
  Frame f;
  ParseResult r = ParseFrame(wire, 1 << 20, &f);
  ASSERT_EQ(r.status, ParseStatus::kFrame) << r.error;
  EXPECT_EQ(r.consumed, wire.size());
  EXPECT_TRUE(f.has_payload);
  EXPECT_TRUE(f.has_checksum);
  EXPECT_TRUE(f.checksum_ok);
  EXPECT_EQ(f.payload, "hello");
  EXPECT_EQ(f.metadata.partition_key(), "key-1");
  EXPECT_EQ(f.metadata.properties(0).value(), "v");
  EXPECT_EQ(f.metadata_bytes, SampleMetadata().SerializeAsString());
  EXPECT_FALSE(f.metadata.has_num_messages_in_batch());
  EXPECT_EQ(f.command.send().sequence_id(), 3u);
}

TEST(Frame, CorruptPayloadFailsChecksum) {
  std::string wire;
  ASSERT_TRUE(AppendPayloadCommand(wire, SampleSend(),
                                   EncodeEntry(SampleMetadata().SerializeAsString(), "hello")));
  wire.back() ^= 0x20;
  Frame f;
  ASSERT_EQ(ParseFrame(wire, 1 << 20, &f).status, ParseStatus::kFrame);
  EXPECT_TRUE(f.has_checksum);
  EXPECT_FALSE(f.checksum_ok);
}

TEST(Frame, PayloadWithoutChecksumBlockIsAccepted) {
  std::string cmd = SampleSend().SerializeAsString();
  std::string entry = EncodeEntry(SampleMetadata().SerializeAsString(), "old");
  std::string wire;
  const uint32_t total = static_cast<uint32_t>(4 + cmd.size() + entry.size());
  for (int shift : {24, 16, 8, 0}) wire.push_back(static_cast<char>(total >> shift));
  for (int shift : {24, 16, 8, 0}) wire.push_back(static_cast<char>(cmd.size() >> shift));
  wire += cmd + entry;
  Frame f;
  ParseResult r = ParseFrame(wire, 1 << 20, &f);
  ASSERT_EQ(r.status, ParseStatus::kFrame) << r.error;
  EXPECT_FALSE(f.has_checksum);
  EXPECT_TRUE(f.checksum_ok);
  EXPECT_EQ(f.payload, "old");
}

TEST(Frame, TruncatedMetadataIsAnError) {
  std::string cmd = SampleSend().SerializeAsString();
  std::string wire;
  const uint32_t total = static_cast<uint32_t>(4 + cmd.size() + 6);
  for (int shift : {24, 16, 8, 0}) wire.push_back(static_cast<char>(total >> shift));
  for (int shift : {24, 16, 8, 0}) wire.push_back(static_cast<char>(cmd.size() >> shift));
  wire += cmd;
  wire += Bytes({0, 0, 0, 0x7f, 1, 2});  // metadata size 127, 2 bytes present
  Frame f;
  ParseResult r = ParseFrame(wire, 1 << 20, &f);
  EXPECT_EQ(r.status, ParseStatus::kError);
  EXPECT_NE(r.error.find("metadata size"), std::string::npos) << r.error;
}

TEST(Frame, UnknownCommandTypeStillParses) {
  proto::BaseCommand c;
  c.set_type(50);  // NEW_TXN: not in our subset
  std::string wire;
  ASSERT_TRUE(AppendCommand(wire, c));
  Frame f;
  ASSERT_EQ(ParseFrame(wire, 1024, &f).status, ParseStatus::kFrame);
  EXPECT_EQ(f.command.type(), 50);
  EXPECT_STREQ(CommandName(50), "UNKNOWN");
  EXPECT_STREQ(CommandName(proto::BaseCommand::LOOKUP), "LOOKUP");
}

TEST(Frame, MinusOneIdsSurviveAsUint64) {
  // Java's MessageId.earliest is {-1, -1}: a 10-byte varint in a uint64 field.
  proto::MessageIdData id;
  id.set_ledgerid(UINT64_MAX);
  id.set_entryid(UINT64_MAX);
  proto::MessageIdData back;
  ASSERT_TRUE(back.ParseFromString(id.SerializeAsString()));
  EXPECT_EQ(back.ledgerid(), UINT64_MAX);
  EXPECT_EQ(id.SerializeAsString().size(), 22u);
}

}  // namespace
}  // namespace magnetar::pulsar
