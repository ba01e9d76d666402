#pragma once

// Payload compression of the Pulsar binary protocol (MessageMetadata.compression): LZ4 (raw
// block), ZLIB (zlib stream), ZSTD (frame) and SNAPPY (raw), with Debian's libraries. The broker
// decompresses what producers send so that every protocol reads plain messages; the size a
// producer announces (uncompressed_size) is checked against a bound before anything is allocated
// and must be exactly what comes out.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "pulsar/codec/pulsar_api.pb.h"

namespace magnetar::pulsar {

// InvalidArgument naming the codec and the problem: corrupt data, a size other than announced,
// an announced size over `max_size`, an unknown compression type.
Result<std::string> Decompress(proto::CompressionType type, std::string_view data,
                               uint32_t uncompressed_size, uint32_t max_size);

// The inverse, as producers write it (the client library and the tests).
Result<std::string> Compress(proto::CompressionType type, std::string_view data);

}  // namespace magnetar::pulsar
