#include "bench/magnetar_bench/common.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

namespace magnetar::bench {

Target ParseTarget(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) {
    throw std::runtime_error("--url must start with http:// (loopback benchmarking, no TLS): " +
                             url);
  }
  std::string rest = url.substr(kScheme.size());
  Target t;
  const size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) {
    t.base_path = rest.substr(slash);
    while (!t.base_path.empty() && t.base_path.back() == '/') t.base_path.pop_back();
  }
  t.host_header = authority;
  std::string host = authority;
  std::string port = "80";
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    const size_t close = authority.find(']');
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') port = authority.substr(close + 2);
  } else if (const size_t colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  asio::io_context io;
  tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto results = resolver.resolve(host, port, ec);
  if (ec || results.empty()) throw std::runtime_error("cannot resolve " + authority);
  t.endpoint = results.begin()->endpoint();
  return t;
}

Runner::Runner(const Options& options, Target target)
    : options_(options), target_(std::move(target)) {
  const int n = std::max(1, options_.threads);
  for (int i = 0; i < n; ++i) {
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    stats_.push_back(std::make_unique<ThreadStats>());
  }
}

Runner::~Runner() { Stop(); }

std::optional<asio::ip::address> Runner::SourceAddress(size_t n) const {
  if (options_.source_addresses <= 1) return std::nullopt;
  const auto k = static_cast<uint32_t>(n % static_cast<size_t>(options_.source_addresses));
  return asio::ip::address_v4((127u << 24) | (1u + k));
}

void Runner::Start() {
  for (auto& ctx : contexts_) {
    guards_.emplace_back(ctx->get_executor());
    threads_.emplace_back([c = ctx.get()] { c->run(); });
  }
}

void Runner::Stop() {
  guards_.clear();
  for (auto& ctx : contexts_) ctx->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void Runner::SetPhase(Phase p) {
  // A profiler switched on by the mark command must see the whole window: run it before the
  // window opens and after it closes (it may take a while: callgrind_control is a script).
  if (p == Phase::kMeasure) Mark("start");
  const uint64_t now = NowNs();
  if (p == Phase::kMeasure) {
    measure_start_ns_.store(now, std::memory_order_relaxed);
    window_start_ns_ = now;
    generator_cpu_start_ = SelfCpuTimes();
    server_cpu_start_ = ProcessCpuTimes(options_.server_pid);
  } else if (p == Phase::kStop && window_start_ns_ != 0) {
    const double wall = static_cast<double>(now - window_start_ns_) / 1e9;
    auto usage = [wall](const CpuTimes& start, const CpuTimes& end) {
      Usage u;
      if (wall > 0 && start.known() && end.known()) {
        u.total = 100.0 * ((end.user - start.user) + (end.system - start.system)) / wall;
        u.system = 100.0 * (end.system - start.system) / wall;
      }
      return u;
    };
    generator_cpu_ = usage(generator_cpu_start_, SelfCpuTimes());
    server_cpu_ = usage(server_cpu_start_, ProcessCpuTimes(options_.server_pid));
  }
  phase_.store(static_cast<int>(p), std::memory_order_release);
  if (options_.mark_signal && options_.server_pid && p != Phase::kWarmup) {
    ::kill(options_.server_pid, options_.mark_signal);
  }
  if (p == Phase::kStop && window_start_ns_ != 0) Mark("stop");
}

void Runner::Mark(const char* what) {
  if (options_.mark_command.empty() || marked_ == what) return;
  marked_ = what;
  const std::string command = options_.mark_command + " " + what;
  if (const int rc = std::system(command.c_str()); rc != 0) {
    std::cerr << "magnetar-bench: --mark-command \"" << command << "\" exited with " << rc << "\n";
  }
}

double Runner::RunWindow() {
  SetPhase(Phase::kWarmup);
  std::this_thread::sleep_for(std::chrono::duration<double>(options_.warmup_s));
  SetPhase(Phase::kMeasure);
  const uint64_t start = measure_start_ns();
  if (options_.count > 0) {
    // Bounded anyway, so a stalled server cannot hang the run.
    const uint64_t limit = start + static_cast<uint64_t>(std::max(options_.duration_s, 60.0) * 1e9);
    while (measured_ops_.load(std::memory_order_relaxed) < options_.count && NowNs() < limit) {
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  } else {
    std::this_thread::sleep_for(std::chrono::duration<double>(options_.duration_s));
  }
  const uint64_t end = NowNs();
  SetPhase(Phase::kStop);
  return static_cast<double>(end - start) / 1e9;
}

ThreadStats Runner::Totals() const {
  ThreadStats total;
  for (const auto& s : stats_) {
    total.latency.Merge(s->latency);
    total.publish_latency.Merge(s->publish_latency);
    total.requests += s->requests;
    total.messages += s->messages;
    total.deliveries += s->deliveries;
    total.errors += s->errors;
    if (total.first_error.empty()) total.first_error = s->first_error;
  }
  return total;
}

CpuTimes SelfCpuTimes() {
  rusage u{};
  if (getrusage(RUSAGE_SELF, &u) != 0) return {};
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return {secs(u.ru_utime), secs(u.ru_stime)};
}

CpuTimes ProcessCpuTimes(int pid) {
  if (pid <= 0) return {};
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return {};
  // Fields after the parenthesised command name (which may hold spaces); utime and stime are
  // fields 14 and 15, in clock ticks, summed over the process's threads.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 > stat.size()) return {};
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  double utime = -1, stime = -1;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::strtod(field.c_str(), nullptr);
    if (i == 15) stime = std::strtod(field.c_str(), nullptr);
  }
  if (utime < 0 || stime < 0) return {};
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  return {utime / tick, stime / tick};
}

uint64_t ReadProcStatusBytes(int pid, const char* field) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) {
      std::istringstream fields(line.substr(prefix.size()));
      uint64_t kb = 0;
      fields >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

}  // namespace magnetar::bench
