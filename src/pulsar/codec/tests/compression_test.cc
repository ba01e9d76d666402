#include "pulsar/codec/compression.h"

#include <gtest/gtest.h>

namespace magnetar::pulsar {
namespace {

constexpr proto::CompressionType kAll[] = {proto::NONE, proto::LZ4, proto::ZLIB, proto::ZSTD,
                                           proto::SNAPPY};

std::string Sample() {
  std::string s;
  for (int i = 0; i < 2000; ++i) s += "message " + std::to_string(i % 17) + ";";
  return s;
}

TEST(Compression, RoundTripEveryCodec) {
  const std::string plain = Sample();
  for (auto type : kAll) {
    auto packed = Compress(type, plain);
    ASSERT_TRUE(packed.ok()) << type;
    if (type != proto::NONE) {
      EXPECT_LT(packed->size(), plain.size()) << type;
    }
    auto back = Decompress(type, *packed, static_cast<uint32_t>(plain.size()), 1 << 20);
    ASSERT_TRUE(back.ok()) << type << ": " << back.status().message();
    EXPECT_EQ(*back, plain) << type;
  }
}

TEST(Compression, WrongAnnouncedSizeIsRefused) {
  const std::string plain = Sample();
  for (auto type : {proto::LZ4, proto::ZLIB, proto::ZSTD, proto::SNAPPY}) {
    auto packed = Compress(type, plain);
    ASSERT_TRUE(packed.ok());
    auto smaller = Decompress(type, *packed, static_cast<uint32_t>(plain.size() - 1), 1 << 20);
    EXPECT_FALSE(smaller.ok()) << type;
    auto larger = Decompress(type, *packed, static_cast<uint32_t>(plain.size() + 1), 1 << 20);
    EXPECT_FALSE(larger.ok()) << type;
  }
}

TEST(Compression, CorruptDataAndOversizeAreErrors) {
  const std::string garbage = "this is not compressed data at all";
  for (auto type : {proto::LZ4, proto::ZLIB, proto::ZSTD, proto::SNAPPY}) {
    EXPECT_FALSE(Decompress(type, garbage, 100, 1 << 20).ok()) << type;
  }
  auto big = Decompress(proto::ZLIB, "x", 2'000'000, 1'000'000);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("over the limit"), std::string::npos);
  EXPECT_FALSE(Decompress(static_cast<proto::CompressionType>(9), "x", 1, 10).ok());
}

}  // namespace
}  // namespace magnetar::pulsar
