#pragma once

// Metrics: counters, gauges and histograms that any module updates, rendered in the Prometheus
// text exposition format 0.0.4 by GET /metrics.
//
// Cost model: updating is lock-free. A Counter spreads its increments over a few cache-line
// padded relaxed atomics chosen by thread (no cache line bouncing between I/O threads on the
// publish path); a Gauge is one relaxed atomic; a Histogram is one relaxed atomic per bucket plus
// the sum. Looking a metric up by name and labels takes the registry's mutex, so hot paths look
// theirs up once (a function-local static reference) and keep the reference: metrics are never
// removed, so references stay valid for the life of the process.
//
// Rendering reads the atomics without stopping writers: a scrape sees each value at some moment
// during the scrape (a histogram's _count is the sum of the bucket counts it read, so buckets and
// count always agree).
//
// Naming (https://prometheus.io/docs/practices/naming/): magnetar_<what>_<unit>, counters end in
// _total, durations are in seconds.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace magnetar::metrics {

// Label names and values of one series, in a fixed order: {{"protocol","relay_http"}}.
using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Inc(uint64_t n = 1) {
    shards_[ShardIndex()].value.fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t Value() const;

 private:
  static constexpr size_t kShards = 8;
  struct alignas(64) Shard {
    std::atomic<uint64_t> value{0};
  };
  static size_t ShardIndex();
  std::array<Shard, kShards> shards_;
};

class Gauge {
 public:
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void Add(int64_t d) { value_.fetch_add(d, std::memory_order_relaxed); }
  void Inc() { Add(1); }
  void Dec() { Add(-1); }
  int64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Fixed upper bounds (ascending, +Inf implied). Observations are counted in the first bucket
// whose bound is >= the value, as Prometheus' `le` means.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (= count)
    double sum = 0;
  };
  Snapshot Read() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1 (the last is +Inf)
  std::atomic<double> sum_{0};
};

// Bucket layouts used across the server.
std::vector<double> LatencyBuckets();  // 50 µs .. 10 s
std::vector<double> SizeBuckets();     // 1 .. 4096, powers of two-ish

// Removes a callback gauge when destroyed (its owner is going away).
class CallbackHandle {
 public:
  CallbackHandle() = default;
  explicit CallbackHandle(std::function<void()> remove) : remove_(std::move(remove)) {}
  CallbackHandle(CallbackHandle&& other) noexcept : remove_(std::move(other.remove_)) {
    other.remove_ = nullptr;
  }
  CallbackHandle& operator=(CallbackHandle&& other) noexcept;
  CallbackHandle(const CallbackHandle&) = delete;
  CallbackHandle& operator=(const CallbackHandle&) = delete;
  ~CallbackHandle() { Reset(); }
  void Reset();

 private:
  std::function<void()> remove_;
};

// Thread-safe. One process-wide instance (Default()) is what /metrics renders; tests make their
// own. Registering the same name and labels again returns the same metric; the same name with
// another type, another help text or another label-name set is a programming error and throws
// std::logic_error (at start-up, where metrics are declared).
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  static Registry& Default();

  Counter& GetCounter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& GetGauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram& GetHistogram(std::string_view name, std::string_view help, const Labels& labels,
                          const std::vector<double>& bounds);
  // A gauge whose value is read from `read` at each scrape (e.g. a queue's size). `read` runs on
  // the scraping thread, under the registry's mutex: it must be quick and thread-safe. It is
  // removed when the handle is destroyed.
  [[nodiscard]] CallbackHandle AddCallbackGauge(std::string_view name, std::string_view help,
                                                const Labels& labels,
                                                std::function<double()> read);

  // The whole registry in the Prometheus text format 0.0.4.
  std::string Render() const;

  // For summaries (the dashboard): the sum over every series of `name` (a counter's or gauge's
  // values; a histogram's counts), 0 when there is no such metric.
  double Total(std::string_view name) const;
  // Every series of histogram `name` merged (they share bounds when registered alike); empty
  // bounds and counts when there is none.
  Histogram::Snapshot MergedHistogram(std::string_view name) const;

 private:
  struct Family;
  struct Series;
  Family& FamilyLocked(std::string_view name, std::string_view help, int type,
                       const Labels& labels);
  Series* FindLocked(Family& family, const Labels& labels);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family>> families_;  // in registration order
  uint64_t next_callback_id_ = 1;
};

// Content-Type of Render()'s output.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

// Seconds since `start` on the steady clock, for latency observations.
double SecondsSince(std::chrono::steady_clock::time_point start);

}  // namespace magnetar::metrics
