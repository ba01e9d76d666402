#pragma once

// LatencyHistogram: an HDR-style log-linear histogram of non-negative 64-bit values (nanoseconds
// in magnetar-bench). Recording is a few integer instructions and never allocates, so it can sit
// in a load generator's hot loop; histograms from several threads merge by adding counts.
//
// Layout: values below 2^(kSubBits+1) have one bucket each (exact). Above that, every power of
// two [2^e, 2^(e+1)) is split into 2^kSubBits equal buckets, so a bucket is at most 1/2^kSubBits
// (= 1/128, 0.78%) of its lower bound wide. A quantile is reported as the middle of its bucket,
// which is within half a bucket (< 0.4%) of every value the bucket holds: under the 1% bound the
// benchmark promises. The exact minimum and maximum are kept as well.
//
// Threading: not thread-safe; give each thread its own and Merge() them afterwards.

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace magnetar::bench {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr uint64_t kSubCount = uint64_t{1} << kSubBits;  // 128 buckets per octave
  static constexpr uint64_t kExactLimit = kSubCount * 2;          // values < 256 are exact
  // 256 exact buckets, then 128 for each octave from 2^8 up to 2^63.
  static constexpr size_t kBuckets = kExactLimit + (63 - kSubBits) * kSubCount;

  void Record(uint64_t value) { RecordN(value, 1); }

  void RecordN(uint64_t value, uint64_t n) {
    if (n == 0) return;
    counts_[IndexOf(value)] += n;
    total_ += n;
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
    sum_ += static_cast<double>(value) * static_cast<double>(n);
  }

  void Merge(const LatencyHistogram& other) {
    for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
    sum_ += other.sum_;
  }

  void Reset() { *this = LatencyHistogram(); }

  uint64_t count() const { return total_; }
  uint64_t min() const { return total_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return total_ ? sum_ / static_cast<double>(total_) : 0.0; }

  // The value at quantile q (0 < q <= 1): the smallest recorded value v such that at least
  // ceil(q * count) values are <= v, to within the bucket error. 0 when empty.
  uint64_t Quantile(double q) const {
    if (total_ == 0) return 0;
    q = std::clamp(q, 0.0, 1.0);
    uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total_) + 0.999999);
    rank = std::clamp<uint64_t>(rank, 1, total_);
    if (rank == total_) return max_;  // the largest value is known exactly
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        const uint64_t mid = BucketLow(i) + (BucketWidth(i) - 1) / 2;
        return std::clamp(mid, min_, max_);
      }
    }
    return max_;
  }

  // Bucket arithmetic, public for the unit test.
  static size_t IndexOf(uint64_t v) {
    if (v < kExactLimit) return static_cast<size_t>(v);
    const int e = 63 - std::countl_zero(v);  // 2^e <= v < 2^(e+1), e >= kSubBits + 1
    const int shift = e - kSubBits;
    const uint64_t sub = (v >> shift) - kSubCount;  // 0 .. kSubCount-1
    return static_cast<size_t>(kExactLimit + static_cast<uint64_t>(e - kSubBits - 1) * kSubCount +
                               sub);
  }
  static uint64_t BucketLow(size_t i) {
    if (i < kExactLimit) return i;
    const uint64_t octave = (i - kExactLimit) / kSubCount;  // 0 for [2^8, 2^9)
    const uint64_t sub = (i - kExactLimit) % kSubCount;
    const int shift = static_cast<int>(octave) + 1;
    return (kSubCount + sub) << shift;
  }
  static uint64_t BucketWidth(size_t i) {
    if (i < kExactLimit) return 1;
    return uint64_t{1} << (((i - kExactLimit) / kSubCount) + 1);
  }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
  uint64_t min_ = std::numeric_limits<uint64_t>::max();
  uint64_t max_ = 0;
  double sum_ = 0;
};

}  // namespace magnetar::bench
