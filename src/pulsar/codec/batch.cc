#include "pulsar/codec/batch.h"

namespace magnetar::pulsar {

Result<std::vector<BatchEntry>> ParseBatch(std::string_view payload, int32_t count) {
  if (count < 0 || count > kMaxBatchMessages) {
    return InvalidArgument("batch of " + std::to_string(count) + " messages is out of range");
  }
  std::vector<BatchEntry> entries;
  // Every entry takes at least 6 bytes (size + payload_size field), which bounds the reserve.
  entries.reserve(std::min<size_t>(static_cast<size_t>(count), payload.size() / 6 + 1));
  for (int32_t i = 0; i < count; ++i) {
    const std::string where = "batch entry " + std::to_string(i) + ": ";
    if (payload.size() < 4) return InvalidArgument(where + "truncated metadata size");
    const uint32_t size = (uint32_t{static_cast<uint8_t>(payload[0])} << 24) |
                          (uint32_t{static_cast<uint8_t>(payload[1])} << 16) |
                          (uint32_t{static_cast<uint8_t>(payload[2])} << 8) |
                          uint32_t{static_cast<uint8_t>(payload[3])};
    payload.remove_prefix(4);
    if (size > payload.size()) return InvalidArgument(where + "metadata runs past the payload");
    BatchEntry entry;
    entry.metadata_bytes.assign(payload.substr(0, size));
    payload.remove_prefix(size);
    if (!entry.metadata.ParsePartialFromString(entry.metadata_bytes) ||
        !entry.metadata.IsInitialized()) {
      return InvalidArgument(where + "not a valid SingleMessageMetadata");
    }
    const int32_t payload_size = entry.metadata.payload_size();
    if (payload_size < 0 || static_cast<size_t>(payload_size) > payload.size()) {
      return InvalidArgument(where + "payload_size runs past the payload");
    }
    entry.payload.assign(payload.substr(0, static_cast<size_t>(payload_size)));
    payload.remove_prefix(static_cast<size_t>(payload_size));
    entries.push_back(std::move(entry));
  }
  if (!payload.empty()) {
    return InvalidArgument(std::to_string(payload.size()) + " bytes left after the last batch entry");
  }
  return entries;
}

std::string EncodeBatch(const std::vector<BatchEntry>& entries) {
  std::string out;
  for (const auto& e : entries) {
    const auto size = static_cast<uint32_t>(e.metadata_bytes.size());
    out.push_back(static_cast<char>(size >> 24));
    out.push_back(static_cast<char>(size >> 16));
    out.push_back(static_cast<char>(size >> 8));
    out.push_back(static_cast<char>(size));
    out += e.metadata_bytes;
    out += e.payload;
  }
  return out;
}

}  // namespace magnetar::pulsar
