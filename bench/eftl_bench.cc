// eftl-bench: load for the eFTL channel, driven through the library's EftlConnection (so it
// measures the client and the server together; both run on this machine).
//
//   eftl-bench --url ws://127.0.0.1:9191/bench --user U --password P --scenario publish
//              [--window 64] [--duration 5] [--warmup 1] [--json]
//   eftl-bench --url … --scenario fanout --subscriptions 10000 [--matching 10] [--window 64]
//
// publish: one connection keeps --window publishes in flight, each completing on the server's
//          QoS ack; reports acknowledged publishes per second.
// fanout:  --subscriptions live subscriptions with distinct matchers {"k":<i>} (spread over
//          connections of at most 1000, the server's per-connection limit) and a publisher whose
//          messages each match one of the first --matching of them (the other
//          subscriptions - matching never match: "non_matching" in the JSON); reports deliveries per
//          second. Ack mode auto, so the server's max_pending_acks paces delivery (with none, a
//          subscriber that falls behind is closed by the server as a slow consumer). Compare runs with few and many subscriptions: with the matcher
//          index the rate must not fall with the number of subscriptions that do not match.
// Measures; asserts nothing.

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "client/eftl.h"

namespace mc = magnetar::client;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string url;
  std::string user;
  std::string password;
  std::string scenario = "publish";
  int window = 64;
  double duration = 5;
  double warmup = 1;
  int subscriptions = 1000;
  int matching = 10;
  bool json = false;
};

mc::EftlOptions Options(const Args& a) {
  mc::EftlOptions o;
  o.username = a.user;
  o.password = a.password;
  o.shuffle_urls = false;
  o.auto_reconnect_attempts = 0;
  return o;
}

// Keeps `window` publishes in flight until `stop`; counts acknowledged ones in `acked`.
class Publisher {
 public:
  Publisher(mc::EftlConnection& conn, int window, int matching)
      : conn_(conn), window_(window), matching_(matching) {}

  void run(std::atomic<bool>& stop, std::atomic<int64_t>& acked, std::atomic<int64_t>& failed) {
    std::unique_lock lock(mutex_);
    int64_t n = 0;
    while (!stop) {
      cv_.wait_for(lock, 50ms, [&] { return in_flight_ < window_ || stop; });
      while (in_flight_ < window_ && !stop) {
        ++in_flight_;
        mc::EftlMessage m;
        m.set_long("k", matching_ > 0 ? n % matching_ : n).set_string("payload", "0123456789abcdef");
        ++n;
        lock.unlock();
        conn_.publish_async(m, [&](const mc::EftlResult& r) {
          (r.ok() ? acked : failed)++;
          std::lock_guard inner(mutex_);
          --in_flight_;
          cv_.notify_all();
        });
        lock.lock();
      }
    }
    cv_.wait_for(lock, 5s, [&] { return in_flight_ == 0; });
  }

 private:
  mc::EftlConnection& conn_;
  int window_;
  int matching_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int in_flight_ = 0;
};

// Runs the publisher for warmup + duration; returns (counted during the measured part, seconds).
template <class Counter>
std::pair<int64_t, double> Measure(const Args& a, mc::EftlConnection& pub, Counter& counted) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> acked{0}, failed{0};
  Publisher publisher(pub, a.window, a.scenario == "fanout" ? a.matching : 0);
  std::thread t([&] { publisher.run(stop, acked, failed); });
  std::this_thread::sleep_for(std::chrono::duration<double>(a.warmup));
  const int64_t before = counted;
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(a.duration));
  const int64_t after = counted;
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  stop = true;
  t.join();
  if (failed > 0) std::fprintf(stderr, "eftl-bench: %lld publishes failed\n", static_cast<long long>(failed.load()));
  return {after - before, seconds};
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"eftl-bench: eFTL publish and fan-out load through the C++ eFTL client"};
  app.add_option("--url", a.url, "eFTL URL (ws://host:port/channel)")->required();
  app.add_option("--user", a.user, "User name");
  app.add_option("--password", a.password, "Password or access token");
  app.add_option("--scenario", a.scenario, "publish or fanout")
      ->check(CLI::IsMember({"publish", "fanout"}));
  app.add_option("--window", a.window, "Publishes in flight")->capture_default_str();
  app.add_option("--duration", a.duration, "Measured seconds")->capture_default_str();
  app.add_option("--warmup", a.warmup, "Seconds before measuring")->capture_default_str();
  app.add_option("--subscriptions", a.subscriptions, "fanout: subscriptions (distinct matchers)")
      ->capture_default_str();
  app.add_option("--matching", a.matching, "fanout: how many of them the messages match")
      ->capture_default_str();
  app.add_flag("--json", a.json, "One JSON object on stdout");
  CLI11_PARSE(app, argc, argv);
  if (a.window < 1 || a.matching < 1 || a.subscriptions < a.matching) {
    std::fprintf(stderr, "eftl-bench: need window >= 1 and subscriptions >= matching >= 1\n");
    return 2;
  }
  try {
    mc::EftlConnection pub(a.url, Options(a));
    double rate = 0;
    int64_t count = 0;
    double seconds = 0;
    if (a.scenario == "publish") {
      std::atomic<int64_t> acked{0};
      // The publisher counts its own acknowledgements.
      std::atomic<bool> stop{false};
      std::atomic<int64_t> failed{0};
      Publisher publisher(pub, a.window, 0);
      std::thread t([&] { publisher.run(stop, acked, failed); });
      std::this_thread::sleep_for(std::chrono::duration<double>(a.warmup));
      const int64_t before = acked;
      const auto start = Clock::now();
      std::this_thread::sleep_for(std::chrono::duration<double>(a.duration));
      count = acked - before;
      seconds = std::chrono::duration<double>(Clock::now() - start).count();
      stop = true;
      t.join();
    } else {
      std::atomic<int64_t> delivered{0};
      std::vector<std::unique_ptr<mc::EftlConnection>> subs;
      std::atomic<int> confirmed{0}, refused{0};
      for (int i = 0; i < a.subscriptions; ++i) {
        if (i % 1000 == 0) subs.push_back(std::make_unique<mc::EftlConnection>(a.url, Options(a)));
        mc::EftlSubscribeOptions s;
        s.matcher = "{\"k\":" + std::to_string(i) + "}";
        s.ack = mc::EftlAckMode::kAuto;
        subs.back()->subscribe_async(
            s, [&](const mc::EftlMessage&) { ++delivered; },
            [&](const mc::EftlResult& r) { (r.ok() ? confirmed : refused)++; });
      }
      while (confirmed + refused < a.subscriptions) std::this_thread::sleep_for(10ms);
      if (refused > 0) {
        std::fprintf(stderr, "eftl-bench: %d subscriptions refused\n", refused.load());
        return 1;
      }
      std::tie(count, seconds) = Measure(a, pub, delivered);
      for (const auto& c : subs) {
        if (!c->is_connected()) throw std::runtime_error("a subscriber connection was closed");
      }
    }
    rate = static_cast<double>(count) / seconds;
    if (a.json) {
      std::printf(
          "{\"ok\":true,\"scenario\":\"%s\",\"count\":%lld,\"seconds\":%.3f,\"per_second\":%.1f,"
          "\"window\":%d,\"subscriptions\":%d,\"matching\":%d,\"non_matching\":%d}\n",
          a.scenario.c_str(), static_cast<long long>(count), seconds, rate, a.window,
          a.scenario == "fanout" ? a.subscriptions : 0, a.scenario == "fanout" ? a.matching : 0,
          a.scenario == "fanout" ? a.subscriptions - a.matching : 0);
    } else {
      std::printf("%s: %.0f %s/s (%lld in %.2f s, window %d%s)\n", a.scenario.c_str(), rate,
                  a.scenario == "publish" ? "acknowledged publishes" : "deliveries",
                  static_cast<long long>(count), seconds, a.window,
                  a.scenario == "fanout"
                      ? (", " + std::to_string(a.subscriptions) + " subscriptions, " +
                         std::to_string(a.matching) + " matching")
                            .c_str()
                      : "");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eftl-bench: %s\n", e.what());
    if (a.json) {
      std::string why;
      for (const char* c = e.what(); *c; ++c) {
        if (*c == '"' || *c == '\\') why.push_back('\\');
        why.push_back(static_cast<unsigned char>(*c) < 0x20 ? ' ' : *c);
      }
      std::printf("{\"ok\":false,\"error\":\"%s\"}\n", why.c_str());
    }
    return 1;
  }
  return 0;
}
