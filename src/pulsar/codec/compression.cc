#include "pulsar/codec/compression.h"

#include <lz4.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

namespace magnetar::pulsar {

namespace {

Status Bad(const char* codec, const std::string& what) {
  return InvalidArgument(std::string(codec) + " payload: " + what);
}

}  // namespace

Result<std::string> Decompress(proto::CompressionType type, std::string_view data,
                               uint32_t uncompressed_size, uint32_t max_size) {
  if (type == proto::NONE) return std::string(data);
  if (uncompressed_size > max_size) {
    return InvalidArgument("uncompressed size " + std::to_string(uncompressed_size) +
                           " is over the limit of " + std::to_string(max_size));
  }
  std::string out(uncompressed_size, '\0');
  switch (type) {
    case proto::LZ4: {
      if (data.size() > static_cast<size_t>(INT32_MAX)) return Bad("LZ4", "too large");
      const int n = LZ4_decompress_safe(data.data(), out.data(), static_cast<int>(data.size()),
                                        static_cast<int>(out.size()));
      if (n < 0 || static_cast<uint32_t>(n) != uncompressed_size) return Bad("LZ4", "corrupt or wrong size");
      return out;
    }
    case proto::ZLIB: {
      uLongf len = out.size();
      const int rc = uncompress(reinterpret_cast<Bytef*>(out.data()), &len,
                                reinterpret_cast<const Bytef*>(data.data()), data.size());
      if (rc != Z_OK || len != uncompressed_size) return Bad("ZLIB", "corrupt or wrong size");
      return out;
    }
    case proto::ZSTD: {
      const size_t n = ZSTD_decompress(out.data(), out.size(), data.data(), data.size());
      if (ZSTD_isError(n) || n != uncompressed_size) return Bad("ZSTD", "corrupt or wrong size");
      return out;
    }
    case proto::SNAPPY: {
      size_t len = 0;
      if (snappy_uncompressed_length(data.data(), data.size(), &len) != SNAPPY_OK ||
          len != uncompressed_size) {
        return Bad("SNAPPY", "corrupt or wrong size");
      }
      if (snappy_uncompress(data.data(), data.size(), out.data(), &len) != SNAPPY_OK) {
        return Bad("SNAPPY", "corrupt");
      }
      return out;
    }
    default:
      return InvalidArgument("unknown compression type " + std::to_string(static_cast<int>(type)));
  }
}

Result<std::string> Compress(proto::CompressionType type, std::string_view data) {
  switch (type) {
    case proto::NONE: return std::string(data);
    case proto::LZ4: {
      if (data.size() > static_cast<size_t>(LZ4_MAX_INPUT_SIZE)) return Bad("LZ4", "too large");
      std::string out(static_cast<size_t>(LZ4_compressBound(static_cast<int>(data.size()))), '\0');
      const int n = LZ4_compress_default(data.data(), out.data(), static_cast<int>(data.size()),
                                         static_cast<int>(out.size()));
      if (n <= 0) return Bad("LZ4", "compression failed");
      out.resize(static_cast<size_t>(n));
      return out;
    }
    case proto::ZLIB: {
      uLongf len = compressBound(data.size());
      std::string out(len, '\0');
      if (compress(reinterpret_cast<Bytef*>(out.data()), &len,
                   reinterpret_cast<const Bytef*>(data.data()), data.size()) != Z_OK) {
        return Bad("ZLIB", "compression failed");
      }
      out.resize(len);
      return out;
    }
    case proto::ZSTD: {
      std::string out(ZSTD_compressBound(data.size()), '\0');
      const size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
      if (ZSTD_isError(n)) return Bad("ZSTD", "compression failed");
      out.resize(n);
      return out;
    }
    case proto::SNAPPY: {
      size_t len = snappy_max_compressed_length(data.size());
      std::string out(len, '\0');
      if (snappy_compress(data.data(), data.size(), out.data(), &len) != SNAPPY_OK) {
        return Bad("SNAPPY", "compression failed");
      }
      out.resize(len);
      return out;
    }
    default:
      return InvalidArgument("unknown compression type " + std::to_string(static_cast<int>(type)));
  }
}

}  // namespace magnetar::pulsar
