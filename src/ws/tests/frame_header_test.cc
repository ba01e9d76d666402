#include "ws/frame_header.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace magnetar::ws {
namespace {

std::vector<uint8_t> Bytes(const FrameHeader& h) { return {h.data(), h.data() + h.size}; }

TEST(FrameHeaderTest, SevenBitLengths) {
  EXPECT_EQ(Bytes(EncodeFrameHeader(Opcode::kText, 0)), (std::vector<uint8_t>{0x81, 0x00}));
  EXPECT_EQ(Bytes(EncodeFrameHeader(Opcode::kText, 125)), (std::vector<uint8_t>{0x81, 125}));
  EXPECT_EQ(Bytes(EncodeFrameHeader(Opcode::kBinary, 1)), (std::vector<uint8_t>{0x82, 0x01}));
}

TEST(FrameHeaderTest, SixteenBitLengths) {
  EXPECT_EQ(Bytes(EncodeFrameHeader(Opcode::kText, 126)),
            (std::vector<uint8_t>{0x81, 126, 0x00, 126}));
  EXPECT_EQ(Bytes(EncodeFrameHeader(Opcode::kText, 65535)),
            (std::vector<uint8_t>{0x81, 126, 0xFF, 0xFF}));
}

TEST(FrameHeaderTest, SixtyFourBitLengths) {
  EXPECT_EQ(Bytes(EncodeFrameHeader(Opcode::kText, 65536)),
            (std::vector<uint8_t>{0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}));
  EXPECT_EQ(Bytes(EncodeFrameHeader(Opcode::kBinary, 0x0102030405060708ULL)),
            (std::vector<uint8_t>{0x82, 127, 1, 2, 3, 4, 5, 6, 7, 8}));
}

}  // namespace
}  // namespace magnetar::ws
