#pragma once

// The Pulsar binary frame (spec/pulsar-binary.md §1), both directions:
//
//   [u32 totalSize][u32 commandSize][BaseCommand]                                simple command
//   [u32 totalSize][u32 commandSize][BaseCommand]
//        [u16 0x0e01][u32 crc32c][u32 metadataSize][MessageMetadata][payload]    payload command
//
// All integers big-endian; totalSize counts everything after itself. The checksum block is
// optional on receive (old clients omit it) and always written on send. Broker entry metadata
// (0x0e02) is skipped on receive and never sent.
//
// Parsing is bounded: a frame larger than the configured limit, sizes that do not add up, a
// command that is not a valid BaseCommand or a metadata block that is not a valid MessageMetadata
// is an error with a message saying which. Pure code, no I/O: the server, the client library and
// the fuzzers link it alone.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pulsar/codec/pulsar_api.pb.h"

namespace magnetar::pulsar {


// What clients default to: a 5 MiB message, plus room for the command and metadata.
inline constexpr uint32_t kDefaultMaxMessageSize = 5 * 1024 * 1024;
inline constexpr uint32_t kFramePadding = 10 * 1024;
inline constexpr uint16_t kChecksumMagic = 0x0e01;
inline constexpr uint16_t kBrokerEntryMetadataMagic = 0x0e02;

// CRC-32C (Castagnoli), as the checksum block carries it.
uint32_t Crc32c(std::string_view data);

struct Frame {
  proto::BaseCommand command;
  bool has_payload = false;      // bytes followed the command
  bool has_checksum = false;     // a 0x0e01 block was present
  bool checksum_ok = true;       // false when present and wrong (the broker answers ChecksumError)
  std::string metadata_bytes;    // MessageMetadata as sent (kept for verbatim forwarding)
  proto::MessageMetadata metadata;
  std::string payload;           // after the metadata (a batch when num_messages_in_batch is set)
};

enum class ParseStatus {
  kFrame,     // one frame parsed; `consumed` bytes used
  kNeedMore,  // the buffer holds part of a frame; read more
  kError,     // unrecoverable: the connection must be closed (error says why)
};

struct ParseResult {
  ParseStatus status = ParseStatus::kNeedMore;
  size_t consumed = 0;
  std::string error;
};

// Parses the first frame of `buffer` into `*frame`. `max_frame_size` bounds totalSize.
ParseResult ParseFrame(std::string_view buffer, uint32_t max_frame_size, Frame* frame);

// Appends a simple command frame. False if the command is missing a required field (a bug).
bool AppendCommand(std::string& out, const proto::BaseCommand& command);
// Appends a payload command frame with the checksum block; `entry` is the pre-encoded
// [u32 metadataSize][metadata][payload] (EncodeEntry), whose crc is computed here unless given.
bool AppendPayloadCommand(std::string& out, const proto::BaseCommand& command,
                          std::string_view entry, std::optional<uint32_t> entry_crc = {});
// [u32 metadataSize][metadata][payload]: the part of a payload frame that the crc covers.
std::string EncodeEntry(std::string_view metadata_bytes, std::string_view payload);

// Convenience builders for the commands every side sends.
proto::BaseCommand MakeCommand(proto::BaseCommand::Type type);
proto::BaseCommand MakeError(uint64_t request_id, proto::ServerError error, std::string message);
proto::BaseCommand MakeSuccess(uint64_t request_id);

const char* CommandName(int type);

}  // namespace magnetar::pulsar
