// Fuzzes the Pulsar binary frame parser the way the broker's read loop drives it: the input is a
// byte stream holding any number of frames, parsed one after another from a shrinking buffer
// under the broker's frame limit. Every parsed frame must re-encode (the command round-trips),
// a payload frame's entry must round-trip through EncodeEntry, a compressed payload must
// decompress to exactly its announced size (or be refused), and a batch that parses must
// re-encode to the same bytes.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "pulsar/codec/batch.h"
#include "pulsar/codec/compression.h"
#include "pulsar/codec/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace magnetar::pulsar;
  std::string_view buffer(reinterpret_cast<const char*>(data), size);
  constexpr uint32_t kLimit = 64 * 1024;  // small, so over-limit frames are reachable
  for (int frames = 0; frames < 64 && !buffer.empty(); ++frames) {
    Frame frame;
    ParseResult r = ParseFrame(buffer, kLimit, &frame);
    if (r.status != ParseStatus::kFrame) break;
    FUZZ_CHECK(r.consumed >= 8 && r.consumed <= buffer.size());
    buffer.remove_prefix(r.consumed);
    std::string again;
    if (frame.has_payload) {
      if (!frame.checksum_ok) continue;
      const std::string entry = EncodeEntry(frame.metadata_bytes, frame.payload);
      FUZZ_CHECK(AppendPayloadCommand(again, frame.command, entry));
      Frame back;
      FUZZ_CHECK(ParseFrame(again, UINT32_MAX, &back).status == ParseStatus::kFrame);
      FUZZ_CHECK(back.checksum_ok && back.payload == frame.payload);
      std::string plain = frame.payload;
      if (frame.metadata.compression() != proto::NONE) {
        auto d = Decompress(frame.metadata.compression(), frame.payload,
                            frame.metadata.uncompressed_size(), kLimit);
        if (!d.ok()) continue;
        FUZZ_CHECK(d->size() == frame.metadata.uncompressed_size());
        plain = std::move(d).value();
      }
      if (frame.metadata.has_num_messages_in_batch()) {
        auto batch = ParseBatch(plain, frame.metadata.num_messages_in_batch());
        if (batch.ok()) FUZZ_CHECK(EncodeBatch(*batch) == plain);
      }
    } else {
      FUZZ_CHECK(AppendCommand(again, frame.command));
    }
  }
  return 0;
}
