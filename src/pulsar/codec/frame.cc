#include "pulsar/codec/frame.h"

#include <boost/crc.hpp>

#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace magnetar::pulsar {

namespace {

uint32_t ReadU32(std::string_view b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(b[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[at + 2])} << 8) | uint32_t{static_cast<uint8_t>(b[at + 3])};
}

uint16_t ReadU16(std::string_view b, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(b[at]) << 8) | static_cast<uint8_t>(b[at + 1]));
}

void PutU32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void PutU16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

ParseResult Error(std::string message) {
  return {ParseStatus::kError, 0, std::move(message)};
}

}  // namespace

namespace {

uint32_t Crc32cPortable(std::string_view data) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

#if defined(__x86_64__)
// SSE 4.2's CRC32 instruction computes exactly CRC-32C, 8 bytes per step: every frame is
// checksummed on both sides, and Boost's table-driven loop was 7% of the broker's batched
// produce profile (BENCHMARKS.md, "Pulsar binary produce").
__attribute__((target("sse4.2"))) uint32_t Crc32cSse42(std::string_view data) {
  uint64_t crc = 0xFFFFFFFFu;
  const char* p = data.data();
  size_t n = data.size();
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    crc = _mm_crc32_u64(crc, word);
  }
  auto crc32 = static_cast<uint32_t>(crc);
  for (; n > 0; ++p, --n) crc32 = _mm_crc32_u8(crc32, static_cast<uint8_t>(*p));
  return crc32 ^ 0xFFFFFFFFu;
}
#endif

}  // namespace

uint32_t Crc32c(std::string_view data) {
#if defined(__x86_64__)
  static const bool hardware = __builtin_cpu_supports("sse4.2");
  if (hardware) return Crc32cSse42(data);
#endif
  return Crc32cPortable(data);
}

ParseResult ParseFrame(std::string_view buffer, uint32_t max_frame_size, Frame* frame) {
  if (buffer.size() < 4) return {};
  const uint32_t total = ReadU32(buffer, 0);
  if (total > max_frame_size) {
    return Error("frame of " + std::to_string(total) + " bytes is over the limit of " +
                 std::to_string(max_frame_size));
  }
  if (total < 4) return Error("frame size " + std::to_string(total) + " is too small");
  if (buffer.size() - 4 < total) return {};
  const std::string_view body = buffer.substr(4, total);
  const uint32_t command_size = ReadU32(body, 0);
  if (command_size > total - 4) {
    return Error("command size " + std::to_string(command_size) + " runs past the frame");
  }
  *frame = Frame{};
  // Partial parse plus our own check: protobuf's own would log every bad client frame.
  if (!frame->command.ParsePartialFromArray(body.data() + 4, static_cast<int>(command_size))) {
    return Error("command is not a valid BaseCommand (malformed protobuf)");
  }
  if (!frame->command.IsInitialized()) {
    return Error("command is not a valid BaseCommand (a required field is missing)");
  }
  std::string_view rest = body.substr(4 + command_size);
  if (!rest.empty()) {
    frame->has_payload = true;
    // Broker entry metadata (sent by brokers to new clients) comes first; skip it.
    if (rest.size() >= 2 && ReadU16(rest, 0) == kBrokerEntryMetadataMagic) {
      if (rest.size() < 6) return Error("truncated broker entry metadata");
      const uint32_t size = ReadU32(rest, 2);
      if (size > rest.size() - 6) return Error("broker entry metadata runs past the frame");
      rest.remove_prefix(6 + size);
    }
    if (rest.size() >= 2 && ReadU16(rest, 0) == kChecksumMagic) {
      if (rest.size() < 6) return Error("truncated checksum block");
      frame->has_checksum = true;
      const uint32_t expected = ReadU32(rest, 2);
      rest.remove_prefix(6);
      frame->checksum_ok = Crc32c(rest) == expected;
    }
    if (rest.size() < 4) return Error("payload frame without a metadata size");
    const uint32_t metadata_size = ReadU32(rest, 0);
    if (metadata_size > rest.size() - 4) return Error("metadata size runs past the frame");
    frame->metadata_bytes.assign(rest.substr(4, metadata_size));
    // A corrupted frame fails its checksum before its metadata is trusted.
    if (frame->checksum_ok && (!frame->metadata.ParsePartialFromString(frame->metadata_bytes) ||
                               !frame->metadata.IsInitialized())) {
      return Error("metadata is not a valid MessageMetadata");
    }
    frame->payload.assign(rest.substr(4 + metadata_size));
  }
  return {ParseStatus::kFrame, 4 + size_t{total}, {}};
}

bool AppendCommand(std::string& out, const proto::BaseCommand& command) {
  if (!command.IsInitialized()) return false;
  const size_t size = command.ByteSizeLong();
  PutU32(out, static_cast<uint32_t>(4 + size));
  PutU32(out, static_cast<uint32_t>(size));
  return command.AppendToString(&out);
}

std::string EncodeEntry(std::string_view metadata_bytes, std::string_view payload) {
  std::string out;
  out.reserve(4 + metadata_bytes.size() + payload.size());
  PutU32(out, static_cast<uint32_t>(metadata_bytes.size()));
  out.append(metadata_bytes);
  out.append(payload);
  return out;
}

bool AppendPayloadCommand(std::string& out, const proto::BaseCommand& command,
                          std::string_view entry, std::optional<uint32_t> entry_crc) {
  if (!command.IsInitialized()) return false;
  const size_t size = command.ByteSizeLong();
  PutU32(out, static_cast<uint32_t>(4 + size + 6 + entry.size()));
  PutU32(out, static_cast<uint32_t>(size));
  if (!command.AppendToString(&out)) return false;
  PutU16(out, kChecksumMagic);
  PutU32(out, entry_crc ? *entry_crc : Crc32c(entry));
  out.append(entry);
  return true;
}

proto::BaseCommand MakeCommand(proto::BaseCommand::Type type) {
  proto::BaseCommand c;
  c.set_type(type);
  return c;
}

proto::BaseCommand MakeError(uint64_t request_id, proto::ServerError error, std::string message) {
  proto::BaseCommand c = MakeCommand(proto::BaseCommand::ERROR);
  auto* e = c.mutable_error();
  e->set_request_id(request_id);
  e->set_error(error);
  e->set_message(std::move(message));
  return c;
}

proto::BaseCommand MakeSuccess(uint64_t request_id) {
  proto::BaseCommand c = MakeCommand(proto::BaseCommand::SUCCESS);
  c.mutable_success()->set_request_id(request_id);
  return c;
}

const char* CommandName(int type) {
  if (proto::BaseCommand::Type_IsValid(type)) {
    return proto::BaseCommand::Type_Name(static_cast<proto::BaseCommand::Type>(type)).c_str();
  }
  return "UNKNOWN";
}

}  // namespace magnetar::pulsar
