#include "common/message_id.h"

#include <gtest/gtest.h>

#include <string>

namespace magnetar {
namespace {

TEST(MessageId, ParsesStrictForm) {
  EXPECT_EQ(MessageId::Parse("1-2"), (MessageId{1, 2}));
  EXPECT_EQ(MessageId::Parse("0-0"), MessageId::Min());
  EXPECT_EQ(MessageId::Parse("1700000000000-15"), (MessageId{1700000000000, 15}));
  EXPECT_EQ(MessageId::Parse("18446744073709551615-18446744073709551615"), MessageId::Max());
}

TEST(MessageId, RejectsMalformed) {
  for (const char* s : {"", "-", "1-", "-1", "a-1", "1-a", "1-2-3", " 1-2", "1-2 ", "1 -2",
                        "+1-2", "1-+2", "1--2", "1", "12", "0x1-2", "1.0-2", "1_2",
                        "18446744073709551616-0", "0-18446744073709551616",
                        "99999999999999999999-0", "100000000000000000000-0"}) {
    EXPECT_FALSE(MessageId::Parse(s).has_value()) << '"' << s << '"';
  }
}

TEST(MessageId, OrdersByHiThenLo) {
  EXPECT_LT((MessageId{1, 5}), (MessageId{2, 0}));
  EXPECT_LT((MessageId{2, 0}), (MessageId{2, 1}));
  EXPECT_LT(MessageId::Min(), (MessageId{0, 1}));
  EXPECT_LT((MessageId{UINT64_MAX, UINT64_MAX - 1}), MessageId::Max());
  EXPECT_EQ((MessageId{3, 4}), (MessageId{3, 4}));
  EXPECT_GT((MessageId{3, 0}), (MessageId{2, UINT64_MAX}));
}

TEST(MessageId, ToStringRoundTrips) {
  EXPECT_EQ((MessageId{1, 2}).ToString(), "1-2");
  EXPECT_EQ(MessageId::Min().ToString(), "0-0");
  EXPECT_EQ(MessageId::Max().ToString(), "18446744073709551615-18446744073709551615");
  for (MessageId id : {MessageId{0, 0}, MessageId{1700000000123, 0}, MessageId{7, 99},
                       MessageId::Max()}) {
    EXPECT_EQ(MessageId::Parse(id.ToString()), id);
  }
  std::string out = "id:";
  MessageId{12, 34}.AppendTo(out);
  EXPECT_EQ(out, "id:12-34");
}

}  // namespace
}  // namespace magnetar
