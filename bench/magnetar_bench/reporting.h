#pragma once

// How every scenario reports: latency histograms as JSON and as a table line, grouped numbers,
// and the figures every result carries (CPU of both sides in the window, errors).

#include <boost/json.hpp>

#include <cstdint>
#include <string>

#include "bench/magnetar_bench/common.h"
#include "bench/magnetar_bench/scenarios.h"

namespace magnetar::bench {

double Us(uint64_t ns);                                  // ns -> µs, one decimal
boost::json::object LatencyJson(const LatencyHistogram& h);  // count, p50..max, mean (µs)
std::string Fixed(double v, int decimals);
std::string Grouped(double v);                           // 1234567.8 -> "1,234,568"
std::string LatencyLine(const LatencyHistogram& h);      // "p50 … max … µs (n=…)"
// Scenario, URL, window, errors and CPU figures; marks the report failed when there were errors.
void AddCommon(Report& r, const Runner& runner, const ThreadStats& totals, double window_s);

}  // namespace magnetar::bench
