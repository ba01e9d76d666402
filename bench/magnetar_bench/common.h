#pragma once

// What every part of magnetar-bench shares: the options, the clock, the target server, the
// generator threads with their per-thread statistics, and the measurement phases.
//
// Threading: the generator runs G threads, each with its own io_context; a connection lives on
// one of them for its whole life, so connections need no locks. Each thread writes only its own
// ThreadStats; the main thread reads them after the threads have stopped. Phase changes are
// atomics written by the main thread and read (relaxed) by the I/O threads.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/magnetar_bench/histogram.h"

namespace magnetar::bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

inline uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

struct Options {
  std::string url = "http://127.0.0.1:9100";
  std::string subscribe_url;  // e2e/fanout: subscribers on this server instead (another node)
  std::string user;
  std::string password;
  std::string token;
  std::string scenario = "publish";
  int connections = 0;      // 0 = the scenario's default
  double duration_s = 5;    // measured window (ignored when count > 0)
  uint64_t count = 0;       // stop after this many measured operations instead
  double warmup_s = 1;      // excluded from every figure
  double rate = 0;          // publishes per second over all connections; 0 = as fast as possible
  int batch = 100;          // messages per bulk request
  int subscribers = 0;      // WebSocket subscribers (e2e, fanout); 0 = the scenario's default
  int payload_bytes = 64;   // approximate size of each message's JSON payload object
  std::string topic;        // default: a fresh name per run
  int source_addresses = 1; // connections bind to 127.0.0.1 .. 127.0.0.N in turn
  int server_pid = 0;       // read VmRSS/VmHWM of this process (connections scenario)
  int threads = 1;          // generator threads
  bool json = false;
  int waiters = 0;          // connections scenario: long-poll waiters held
  int idle_ws = 0;          // connections scenario: idle WebSockets held
  int window = 64;          // fanout: messages a subscriber may be behind before publishing waits
  double poll_gap_ms = 2;   // poll: pause after the waiters re-poll, so they are parked
  int mark_signal = 0;      // send this signal to --server-pid when the measured window opens/closes
  std::string mark_command; // run `<command> start` / `<command> stop` when the window opens/closes
  bool login_only = false;  // print the access token and exit
  int connect_concurrency = 256;  // handshakes in progress at once, per generator thread
  uint64_t messages = 0;    // pulsar-ws-consume: messages pre-filled (0 = 100,000)
  std::string tenant;       // pulsar-ws-*: the topic's tenant (default: the token's username)
};

// Where the relay server is: an IPv4/IPv6 endpoint, the Host header and a path prefix.
struct Target {
  tcp::endpoint endpoint;
  std::string host_header;  // host[:port] as in the URL
  std::string base_path;    // "" or "/prefix" (no trailing slash)
};

// Parses http://host[:port][/prefix]; resolves host. Throws std::runtime_error on failure.
Target ParseTarget(const std::string& url);

// Per-thread counters. Written by one generator thread; read after it stopped.
struct alignas(64) ThreadStats {
  LatencyHistogram latency;          // the scenario's main latency (see the scenario)
  LatencyHistogram publish_latency;  // publish request -> response, where it is not the main one
  uint64_t requests = 0;             // successful requests in the window
  uint64_t messages = 0;             // messages they carried (bulk: batch per request)
  uint64_t deliveries = 0;           // WebSocket/poll deliveries in the window
  uint64_t errors = 0;               // failed requests or connections (any time)
  std::string first_error;           // the first failure, for the report
  void Error(std::string_view what) {
    ++errors;
    if (first_error.empty()) first_error = std::string(what.substr(0, 300));
  }
};

struct CpuTimes {
  double user = -1;    // seconds
  double system = -1;  // seconds
  bool known() const { return user >= 0 && system >= 0; }
};

enum class Phase : int { kWarmup = 0, kMeasure = 1, kStop = 2 };

// The generator threads and the shared measurement state.
class Runner {
 public:
  Runner(const Options& options, Target target);
  ~Runner();

  const Options& options() const { return options_; }
  const Target& target() const { return target_; }
  // Where WebSocket subscribers connect (--subscribe-url; default the target).
  const Target& subscribe_target() const { return subscribe_target_ ? *subscribe_target_ : target_; }
  void set_subscribe_target(Target t) { subscribe_target_ = std::move(t); }
  const std::string& token() const { return token_; }
  void set_token(std::string token) { token_ = std::move(token); }

  size_t thread_count() const { return contexts_.size(); }
  asio::io_context& context(size_t i) { return *contexts_[i % contexts_.size()]; }
  ThreadStats& stats(size_t i) { return *stats_[i % stats_.size()]; }
  // The source address of the n-th connection (127.0.0.1 + n % source_addresses).
  std::optional<asio::ip::address> SourceAddress(size_t n) const;

  void Start();  // starts the threads (they run until Stop)
  void Stop();   // stops and joins the threads

  Phase phase() const { return static_cast<Phase>(phase_.load(std::memory_order_relaxed)); }
  bool measuring() const { return phase() == Phase::kMeasure; }
  bool stopping() const { return phase() == Phase::kStop; }
  uint64_t measure_start_ns() const { return measure_start_ns_.load(std::memory_order_relaxed); }
  // Records whether a latency that started at `start_ns` belongs in the window.
  bool InWindow(uint64_t start_ns) const {
    return measuring() && start_ns >= measure_start_ns();
  }
  // Counts measured operations, for --count.
  void CountMeasured(uint64_t n) { measured_ops_.fetch_add(n, std::memory_order_relaxed); }

  // Warm-up, then the measured window (duration or count), then Phase::kStop. Returns the
  // window's length in seconds.
  double RunWindow();
  void SetPhase(Phase p);

  ThreadStats Totals() const;  // merged over threads

  // CPU used during the measured window, in percent of one core: this process (the generator)
  // and --server-pid (negative when unknown), user + kernel and the kernel's part. Shows which
  // side was the bottleneck, and how much of the server's time went to system calls.
  double generator_cpu_percent() const { return generator_cpu_.total; }
  double generator_system_percent() const { return generator_cpu_.system; }
  double server_cpu_percent() const { return server_cpu_.total; }
  double server_system_percent() const { return server_cpu_.system; }

 private:
  void Mark(const char* what);  // runs --mark-command once per window edge

  Options options_;
  Target target_;
  std::optional<Target> subscribe_target_;
  std::string token_;
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<std::unique_ptr<ThreadStats>> stats_;
  std::vector<std::thread> threads_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::atomic<int> phase_{0};
  std::atomic<uint64_t> measure_start_ns_{UINT64_MAX};
  std::atomic<uint64_t> measured_ops_{0};
  struct Usage {
    double total = -1;   // percent of one core
    double system = -1;  // of which in the kernel
  };
  CpuTimes generator_cpu_start_;
  CpuTimes server_cpu_start_;
  uint64_t window_start_ns_ = 0;
  Usage generator_cpu_;
  Usage server_cpu_;
  std::string marked_;
};

// CPU seconds used so far by this process / by process `pid` (all threads); negative when
// unknown.
CpuTimes SelfCpuTimes();
CpuTimes ProcessCpuTimes(int pid);

// Reads "VmRSS" or "VmHWM" (bytes) from /proc/<pid>/status; 0 when unavailable.
uint64_t ReadProcStatusBytes(int pid, const char* field);

}  // namespace magnetar::bench
