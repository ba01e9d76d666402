#include "common/metrics.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>
#include <vector>

namespace magnetar::metrics {
namespace {

TEST(MetricsTest, CounterSumsAcrossThreads) {
  Registry r;
  Counter& c = r.GetCounter("x_total", "Things.");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c] {
      for (int i = 0; i < 10000; ++i) c.Inc();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.Value(), 40000u);
  EXPECT_EQ(&c, &r.GetCounter("x_total", "Things."));  // same name and labels: same counter
}

TEST(MetricsTest, RendersCountersAndGaugesWithEscapedLabels) {
  Registry r;
  r.GetCounter("req_total", "Requests.\nSecond line", {{"route", "a\"b\\c"}}).Inc(3);
  r.GetGauge("open", "Open things.").Set(-2);
  EXPECT_EQ(r.Render(),
            "# HELP req_total Requests.\\nSecond line\n"
            "# TYPE req_total counter\n"
            "req_total{route=\"a\\\"b\\\\c\"} 3\n"
            "# HELP open Open things.\n"
            "# TYPE open gauge\n"
            "open -2\n");
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Registry r;
  Histogram& h = r.GetHistogram("lat_seconds", "Latency.", {{"p", "x"}}, {0.25, 1});
  h.Observe(0.125);
  h.Observe(0.25);  // le is inclusive
  h.Observe(0.5);
  h.Observe(7);
  EXPECT_EQ(r.Render(),
            "# HELP lat_seconds Latency.\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{p=\"x\",le=\"0.25\"} 2\n"
            "lat_seconds_bucket{p=\"x\",le=\"1\"} 3\n"
            "lat_seconds_bucket{p=\"x\",le=\"+Inf\"} 4\n"
            "lat_seconds_sum{p=\"x\"} 7.875\n"
            "lat_seconds_count{p=\"x\"} 4\n");
}

TEST(MetricsTest, CallbackGaugeIsReadAtScrapeAndRemovedWithItsHandle) {
  Registry r;
  double value = 5;
  {
    CallbackHandle handle = r.AddCallbackGauge("queue", "Queue.", {}, [&value] { return value; });
    value = 6;
    EXPECT_NE(r.Render().find("queue 6\n"), std::string::npos);
  }
  EXPECT_EQ(r.Render().find("queue 6"), std::string::npos);
}

TEST(MetricsTest, ConflictingRegistrationsAreRefused) {
  Registry r;
  r.GetCounter("a_total", "A.", {{"k", "v"}});
  EXPECT_THROW(r.GetGauge("a_total", "A.", {{"k", "v"}}), std::logic_error);
  EXPECT_THROW(r.GetCounter("a_total", "A.", {{"other", "v"}}), std::logic_error);
  EXPECT_THROW(r.GetCounter("bad-name", "B."), std::logic_error);
  EXPECT_THROW(r.GetCounter("b_total", "B.", {{"le", "1"}}), std::logic_error);
}

TEST(MetricsTest, TotalsAndMergedHistogramsSumEverySeries) {
  Registry r;
  r.GetCounter("m_total", "M.", {{"p", "a"}}).Inc(2);
  r.GetCounter("m_total", "M.", {{"p", "b"}}).Inc(3);
  r.GetHistogram("h_seconds", "H.", {{"p", "a"}}, {1}).Observe(0.5);
  r.GetHistogram("h_seconds", "H.", {{"p", "b"}}, {1}).Observe(2);
  EXPECT_EQ(r.Total("m_total"), 5);
  EXPECT_EQ(r.Total("missing"), 0);
  const Histogram::Snapshot h = r.MergedHistogram("h_seconds");
  ASSERT_EQ(h.cumulative.size(), 2u);
  EXPECT_EQ(h.cumulative[0], 1u);
  EXPECT_EQ(h.cumulative[1], 2u);
  EXPECT_EQ(h.sum, 2.5);
}

}  // namespace
}  // namespace magnetar::metrics
