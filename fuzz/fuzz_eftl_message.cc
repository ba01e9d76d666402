// Fuzzes the eFTL message decoder and matcher parser: the input is what a client may put in a
// publish body or a subscribe's matcher. Whatever it is: no crash, leak or undefined behaviour;
// a decoded message encodes to JSON that decodes to the same encoding (lossless round trip);
// the lenient decoder (relay payloads) accepts every JSON object the wire decoder accepts.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "eftl/codec.h"
#include "eftl/matcher.h"
#include "eftl/matcher_index.h"
#include "fuzz_check.h"

namespace magnetar::eftl {
namespace {

void FuzzOne(std::string_view text) {
  auto wire = ParseMessage(text, DecodeMode::kWire);
  auto lenient = ParseMessage(text, DecodeMode::kLenient);
  if (wire.ok()) {
    FUZZ_CHECK(lenient.ok());
    const std::string once = EncodeMessage(*wire);
    FUZZ_CHECK(fuzz::IsJson(once));
    auto again = ParseMessage(once, DecodeMode::kWire);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(EncodeMessage(*again) == once);
  }
  if (lenient.ok()) {
    const std::string once = EncodeMessage(*lenient);
    auto again = ParseMessage(once, DecodeMode::kWire);
    FUZZ_CHECK(again.ok());  // what the lenient decoder makes is always a valid wire message
    FUZZ_CHECK(EncodeMessage(*again) == once);
  }
  auto matcher = ParseMatcher(text);
  if (matcher.ok() && lenient.ok()) {
    // The index must agree with evaluating the matcher directly.
    MatcherIndex index;
    index.Add(1, std::make_shared<const Matcher>(*matcher));
    bool indexed = false;
    index.ForEachMatch(*lenient, [&](uint64_t) { indexed = true; });
    FUZZ_CHECK(indexed == matcher->Matches(*lenient));
  }
}

}  // namespace
}  // namespace magnetar::eftl

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  magnetar::eftl::FuzzOne(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
