#include "bench/magnetar_bench/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace magnetar::bench {
namespace {

TEST(LatencyHistogramTest, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Quantile(0.5), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.min(), 0u);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 0; v < 256; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 256u);
  EXPECT_EQ(h.Quantile(0.5), 127u);  // rank 128 of 0..255
  EXPECT_EQ(h.Quantile(1.0), 255u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 255u);
}

TEST(LatencyHistogramTest, BucketsTileTheRangeWithoutGaps) {
  for (size_t i = 0; i + 1 < LatencyHistogram::kBuckets; ++i) {
    ASSERT_EQ(LatencyHistogram::BucketLow(i) + LatencyHistogram::BucketWidth(i),
              LatencyHistogram::BucketLow(i + 1))
        << "bucket " << i;
    ASSERT_EQ(LatencyHistogram::IndexOf(LatencyHistogram::BucketLow(i)), i);
    ASSERT_EQ(LatencyHistogram::IndexOf(LatencyHistogram::BucketLow(i + 1) - 1), i);
  }
  EXPECT_EQ(LatencyHistogram::IndexOf(UINT64_MAX), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogramTest, EveryBucketIsWithinOnePercent) {
  for (size_t i = LatencyHistogram::kExactLimit; i < LatencyHistogram::kBuckets; ++i) {
    const double low = static_cast<double>(LatencyHistogram::BucketLow(i));
    const double width = static_cast<double>(LatencyHistogram::BucketWidth(i));
    ASSERT_LE(width / low, 0.01) << "bucket " << i;
  }
}

// Quantiles of random data against the exact order statistics.
TEST(LatencyHistogramTest, QuantilesWithinOnePercentOfExact) {
  std::mt19937_64 rng(42);
  // Log-uniform from 1 µs to 100 ms in nanoseconds: spans many octaves like real latencies.
  std::uniform_real_distribution<double> exponent(3.0, 8.0);
  std::vector<uint64_t> values;
  LatencyHistogram h;
  for (int i = 0; i < 200000; ++i) {
    const auto v = static_cast<uint64_t>(std::pow(10.0, exponent(rng)));
    values.push_back(v);
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.99, 0.999, 1.0}) {
    const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
    const double exact = static_cast<double>(values[rank - 1]);
    const double got = static_cast<double>(h.Quantile(q));
    EXPECT_LE(std::abs(got - exact) / exact, 0.01) << "q=" << q << " exact=" << exact;
  }
  EXPECT_EQ(h.max(), values.back());
  EXPECT_EQ(h.min(), values.front());
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverythingInOne) {
  LatencyHistogram a, b, all;
  for (uint64_t v = 1; v < 100000; v += 7) {
    (v % 2 ? a : b).Record(v * 13);
    all.Record(v * 13);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_EQ(a.min(), all.min());
  for (double q : {0.1, 0.5, 0.9, 0.99, 0.999}) EXPECT_EQ(a.Quantile(q), all.Quantile(q));
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
}

TEST(LatencyHistogramTest, HugeValuesDoNotOverflow) {
  LatencyHistogram h;
  h.Record(UINT64_MAX);
  h.Record(uint64_t{1} << 62);
  EXPECT_EQ(h.max(), UINT64_MAX);
  EXPECT_EQ(h.Quantile(1.0), UINT64_MAX);
  const double half = static_cast<double>(h.Quantile(0.5));
  EXPECT_NEAR(half / static_cast<double>(uint64_t{1} << 62), 1.0, 0.01);
}

}  // namespace
}  // namespace magnetar::bench
