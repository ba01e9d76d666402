#include "bench/magnetar_bench/reporting.h"

#include <cmath>
#include <cstdio>

namespace magnetar::bench {

namespace json = boost::json;

double Us(uint64_t ns) { return std::round(static_cast<double>(ns) / 100.0) / 10.0; }

json::object LatencyJson(const LatencyHistogram& h) {
  return json::object{{"count", h.count()},
                      {"p50_us", Us(h.Quantile(0.50))},
                      {"p90_us", Us(h.Quantile(0.90))},
                      {"p99_us", Us(h.Quantile(0.99))},
                      {"p999_us", Us(h.Quantile(0.999))},
                      {"max_us", Us(h.max())},
                      {"mean_us", std::round(h.mean() / 100.0) / 10.0}};
}

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// 1234567.8 -> "1,234,568"
std::string Grouped(double v) {
  std::string digits = std::to_string(static_cast<long long>(std::llround(v)));
  std::string out;
  const size_t lead = digits[0] == '-' ? 1 : 0;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > lead && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string LatencyLine(const LatencyHistogram& h) {
  if (h.count() == 0) return "no samples";
  return "p50 " + Fixed(Us(h.Quantile(0.5)), 1) + "  p90 " + Fixed(Us(h.Quantile(0.9)), 1) +
         "  p99 " + Fixed(Us(h.Quantile(0.99)), 1) + "  p99.9 " +
         Fixed(Us(h.Quantile(0.999)), 1) + "  max " + Fixed(Us(h.max()), 1) + " µs  (n=" +
         Grouped(static_cast<double>(h.count())) + ")";
}

void AddCommon(Report& r, const Runner& runner, const ThreadStats& totals, double window_s) {
  const Options& o = runner.options();
  r.json["scenario"] = o.scenario;
  r.json["url"] = o.url;
  r.json["generator_threads"] = o.threads;
  r.json["warmup_s"] = o.warmup_s;
  r.json["window_s"] = std::round(window_s * 1000) / 1000;
  r.json["payload_bytes"] = o.payload_bytes;
  r.json["errors"] = totals.errors;
  std::string cpu;
  auto add_cpu = [&](const char* who, double total, double system) {
    if (total < 0) return;
    r.json[std::string(who) + "_cpu_percent"] = std::llround(total);
    r.json[std::string(who) + "_system_cpu_percent"] = std::llround(system);
    if (!cpu.empty()) cpu += ", ";
    cpu += Fixed(total, 0) + "% " + who + " (" + Fixed(system, 0) + "% in the kernel)";
  };
  add_cpu("generator", runner.generator_cpu_percent(), runner.generator_system_percent());
  add_cpu("server", runner.server_cpu_percent(), runner.server_system_percent());
  r.footer.emplace_back("CPU in the window (100% = 1 core)", cpu.empty() ? "unknown" : cpu);
  if (!totals.first_error.empty()) r.json["first_error"] = totals.first_error;
  r.footer.emplace_back("errors", std::to_string(totals.errors) +
                                     (totals.first_error.empty() ? "" : " (first: " + totals.first_error + ")"));
  if (totals.errors > 0) r.ok = false;
}

}  // namespace magnetar::bench
