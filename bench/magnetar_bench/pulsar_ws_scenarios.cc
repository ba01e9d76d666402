// The Apache Pulsar WebSocket API v2 scenarios (issue 10; shared/spec/pulsar-websocket.md):
// producer sessions with several publishes in flight, consumer sessions acking every message.
// Same generator threads, histograms and reports as the relay scenarios.

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <stdexcept>

#include "bench/magnetar_bench/reporting.h"
#include "bench/magnetar_bench/requests.h"
#include "bench/magnetar_bench/scenarios.h"
#include "bench/magnetar_bench/ws_conn.h"

namespace magnetar::bench {

namespace {

using std::chrono::steady_clock;

constexpr auto kReconnectDelay = std::chrono::milliseconds(100);
constexpr auto kFillLimit = std::chrono::seconds(300);
// The server's push window per consumer (spec §4.1: capped at 1000).
constexpr int kReceiverQueue = 1000;

// A producer session: keeps up to `window` publish frames without a receipt, closed loop (the
// next frame as soon as a receipt frees a slot) or open loop at `interval_ns` (each frame
// stamped with its scheduled time, so a stalled server shows up as latency, not as fewer sends).
class WsProducer final : public WsListener {
 public:
  struct Config {
    std::string handshake;
    PreparedRequest frame;
    int window = 64;
    uint64_t interval_ns = 0;      // 0 = closed loop
    uint64_t first_offset_ns = 0;  // staggers open-loop producers
    uint64_t limit = 0;            // send at most this many (pre-fill); 0 = until the run stops
    bool main_latency = true;      // receipt latency into ThreadStats::latency (else publish_latency)
    std::atomic<uint64_t>* acked = nullptr;  // every ok receipt, measured or not
    std::atomic<int>* failures = nullptr;    // error receipts and lost sessions
  };

  WsProducer(Runner& runner, size_t index, Config config)
      : runner_(runner),
        io_(runner.context(index)),
        stats_(runner.stats(index)),
        config_(std::move(config)),
        conn_(io_, runner.target(), runner.SourceAddress(index), this, index + 7919),
        timer_(io_),
        reconnect_(io_) {}

  void Start() {
    asio::post(io_, [this] { conn_.Connect(config_.handshake); });
  }

  void OnOpen(WsConn&) override {
    in_flight_ = 0;  // receipts of a previous session are lost with it
    if (next_ns_ == 0) next_ns_ = NowNs() + config_.first_offset_ns;
    SendMore();
  }

  void OnText(WsConn&, std::string_view text, uint64_t now) override {
    if (in_flight_ > 0) --in_flight_;
    if (JsonStringField(text, "result") == "ok") {
      if (config_.acked) config_.acked->fetch_add(1, std::memory_order_relaxed);
      if (auto stamp = ContextStamp(text); stamp && runner_.InWindow(*stamp)) {
        (config_.main_latency ? stats_.latency : stats_.publish_latency).Record(now - *stamp);
        ++stats_.requests;
        ++stats_.messages;
        runner_.CountMeasured(config_.main_latency ? 1 : 0);
      }
    } else if (!runner_.stopping()) {
      stats_.Error("receipt: " + std::string(text.substr(0, 200)));
      if (config_.failures) config_.failures->fetch_add(1);
    }
    SendMore();
  }

  void OnClosed(WsConn&, const std::string& why) override {
    if (runner_.stopping()) return;
    stats_.Error("producer WebSocket: " + why);
    if (config_.failures) config_.failures->fetch_add(1);
    reconnect_.expires_after(kReconnectDelay);
    reconnect_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec && !runner_.stopping()) conn_.Connect(config_.handshake);
    });
  }

 private:
  void SendMore() {
    while (!runner_.stopping() && conn_.open() && in_flight_ < config_.window &&
           (config_.limit == 0 || sent_ < config_.limit)) {
      uint64_t intended;
      if (config_.interval_ns) {
        const uint64_t now = NowNs();
        if (next_ns_ > now + 2000) {
          ArmTimer();
          return;
        }
        intended = next_ns_;
        next_ns_ += config_.interval_ns;
      } else {
        intended = NowNs();
      }
      config_.frame.Stamp(intended);
      conn_.SendText(config_.frame.bytes);  // queued frames go out in one write
      ++in_flight_;
      ++sent_;
    }
  }

  void ArmTimer() {
    if (timer_armed_) return;
    timer_armed_ = true;
    timer_.expires_at(steady_clock::time_point(std::chrono::nanoseconds(next_ns_)));
    timer_.async_wait([this](const boost::system::error_code& ec) {
      timer_armed_ = false;
      if (!ec) SendMore();
    });
  }

  Runner& runner_;
  asio::io_context& io_;
  ThreadStats& stats_;
  Config config_;
  WsConn conn_;
  asio::steady_timer timer_;
  asio::steady_timer reconnect_;
  bool timer_armed_ = false;
  int in_flight_ = 0;
  uint64_t sent_ = 0;
  uint64_t next_ns_ = 0;
};

// A consumer session: acks every message ({"messageId":…}, which also frees its slot in the
// server's push window) and counts it; with `latency`, records publish -> frame received from
// the stamp the producer put in the properties.
class WsConsumer final : public WsListener {
 public:
  struct Config {
    std::string handshake;
    bool latency = false;
    std::atomic<uint64_t>* received = nullptr;  // every message, measured or not
    std::atomic<int>* ready = nullptr;          // sessions open (101 received)
    std::atomic<int>* failed = nullptr;         // sessions refused before opening
  };

  WsConsumer(Runner& runner, size_t index, Config config)
      : runner_(runner),
        io_(runner.context(index)),
        stats_(runner.stats(index)),
        config_(std::move(config)),
        conn_(io_, runner.target(), runner.SourceAddress(index), this, index + 104729) {}

  void Start() {
    asio::post(io_, [this] { conn_.Connect(config_.handshake); });
  }
  // Closes the session (from any thread); the subscription stays (durable).
  void Close() {
    asio::post(io_, [this] {
      closing_ = true;
      conn_.Close();
    });
  }

  void OnOpen(WsConn&) override {
    if (!opened_) {
      opened_ = true;
      if (config_.ready) config_.ready->fetch_add(1);
    }
  }

  void OnText(WsConn& c, std::string_view text, uint64_t now) override {
    const std::string_view id = JsonStringField(text, "messageId");
    if (id.empty()) {
      if (!runner_.stopping()) stats_.Error("consumer frame without messageId: " + std::string(text.substr(0, 200)));
      return;
    }
    ack_.assign(R"({"messageId":")").append(id).append(R"("})");
    c.SendText(ack_);
    if (config_.received) config_.received->fetch_add(1, std::memory_order_relaxed);
    if (config_.latency) {
      if (auto stamp = FindStamp(text); stamp && runner_.InWindow(*stamp)) {
        stats_.latency.Record(now - *stamp);
        ++stats_.deliveries;
        runner_.CountMeasured(1);
      }
    } else if (runner_.measuring()) {
      ++stats_.deliveries;
      runner_.CountMeasured(1);
    }
  }

  void OnClosed(WsConn&, const std::string& why) override {
    if (runner_.stopping() || closing_) return;
    stats_.Error("consumer WebSocket: " + why);
    if (!opened_ && config_.failed) config_.failed->fetch_add(1);
  }

 private:
  Runner& runner_;
  asio::io_context& io_;
  ThreadStats& stats_;
  Config config_;
  WsConn conn_;
  std::string ack_;
  bool opened_ = false;
  bool closing_ = false;
};

template <typename F>
bool WaitUntil(F done, std::chrono::seconds limit) {
  const auto deadline = steady_clock::now() + limit;
  while (!done()) {
    if (steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

std::string Tenant(const Runner& runner) {
  const Options& o = runner.options();
  if (!o.tenant.empty()) return o.tenant;
  std::string user = TokenUsername(runner.token());
  if (user.empty()) {
    throw std::runtime_error("no tenant: the token carries no username claim; give --tenant");
  }
  return user;
}

// Consumer query: one consumer keeps the default Exclusive subscription, several share it.
std::string ConsumerQuery(int consumers) {
  std::string q = "receiverQueueSize=" + std::to_string(kReceiverQueue);
  if (consumers > 1) q += "&subscriptionType=Shared";
  return q;
}

std::vector<std::unique_ptr<WsConsumer>> MakeConsumers(Runner& runner, int n, size_t first_index,
                                                      const std::string& handshake, bool latency,
                                                      std::atomic<uint64_t>& received,
                                                      std::atomic<int>& ready,
                                                      std::atomic<int>& failed) {
  std::vector<std::unique_ptr<WsConsumer>> out;
  for (int i = 0; i < n; ++i) {
    WsConsumer::Config c;
    c.handshake = handshake;
    c.latency = latency;
    c.received = &received;
    c.ready = &ready;
    c.failed = &failed;
    out.push_back(std::make_unique<WsConsumer>(runner, first_index + static_cast<size_t>(i), std::move(c)));
  }
  return out;
}

// Stops the generator threads (before the sessions they run are destroyed) and throws.
[[noreturn]] void Abort(Runner& runner, const std::string& what) {
  runner.Stop();
  const ThreadStats t = runner.Totals();
  throw std::runtime_error(what + (t.first_error.empty() ? "" : " (" + t.first_error + ")"));
}

// Starts `consumers` and waits until all opened; aborts the run when one was refused.
void OpenAll(std::vector<std::unique_ptr<WsConsumer>>& consumers, std::atomic<int>& ready,
             std::atomic<int>& failed, Runner& runner) {
  for (auto& c : consumers) c->Start();
  const int n = static_cast<int>(consumers.size());
  WaitUntil([&] { return ready.load() + failed.load() >= n; }, std::chrono::seconds(30));
  if (ready.load() < n) {
    Abort(runner, "consumer sessions: " + std::to_string(ready.load()) + " of " +
                      std::to_string(n) + " opened");
  }
}

WsProducer::Config ProducerConfig(const Runner& runner, const std::string& handshake) {
  WsProducer::Config c;
  c.handshake = handshake;
  c.frame = PulsarWsPublishFrame(runner.options().payload_bytes);
  c.window = std::clamp(runner.options().window, 1, 1000);  // the server's maxPendingMessages
  return c;
}

}  // namespace

Report RunPulsarWs(Runner& runner) {
  const Options& o = runner.options();
  const std::string& scenario = o.scenario;
  const bool produce = scenario == "pulsar-ws-produce";
  const bool consume = scenario == "pulsar-ws-consume";
  const int producers = o.connections > 0 ? o.connections : 1;
  const int consumers = o.subscribers > 0 ? o.subscribers : 1;
  const double rate = produce || consume ? 0 : (o.rate > 0 ? o.rate : 10000);
  const std::string tenant = Tenant(runner);
  const std::string topic = o.topic.empty() ? FreshTopic("bench-pulsar-ws") : o.topic;
  const std::string subscription = "bench";
  const std::string producer_handshake =
      PulsarWsHandshake(runner.target(), "producer", tenant, topic, "", runner.token(), "");
  const std::string consumer_handshake =
      PulsarWsHandshake(runner.target(), "consumer", tenant, topic, subscription, runner.token(),
                        ConsumerQuery(consumers));

  std::atomic<uint64_t> acked{0}, received{0};
  std::atomic<int> ready{0}, failed{0}, failures{0};
  std::vector<std::unique_ptr<WsProducer>> pubs;
  std::vector<std::unique_ptr<WsConsumer>> subs, first;
  // Declared after the sessions, so it runs first on every way out: no handler of a destroyed
  // session can run.
  struct StopThreads {
    Runner& runner;
    ~StopThreads() { runner.Stop(); }
  } stop_threads{runner};
  double window_s = 0;
  uint64_t prefilled = 0;
  runner.Start();

  if (produce) {
    for (int i = 0; i < producers; ++i) {
      pubs.push_back(std::make_unique<WsProducer>(runner, static_cast<size_t>(i),
                                                  ProducerConfig(runner, producer_handshake)));
    }
    for (auto& p : pubs) p->Start();
    window_s = runner.RunWindow();
  } else if (consume) {
    // A new subscription starts at the end of the topic (spec §4.1): create it, leave, fill the
    // topic, then come back and read everything from the cursor.
    first = MakeConsumers(runner, 1, 0, consumer_handshake, false, received, ready, failed);
    OpenAll(first, ready, failed, runner);
    first[0]->Close();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the server sees it leave
    ready = 0;
    const uint64_t total = o.messages > 0 ? o.messages : 100000;
    for (int i = 0; i < producers; ++i) {
      WsProducer::Config c = ProducerConfig(runner, producer_handshake);
      c.limit = total / static_cast<uint64_t>(producers) +
                (static_cast<uint64_t>(i) < total % static_cast<uint64_t>(producers) ? 1 : 0);
      c.acked = &acked;
      c.failures = &failures;
      c.main_latency = false;
      pubs.push_back(std::make_unique<WsProducer>(runner, static_cast<size_t>(i), std::move(c)));
    }
    const auto fill_start = steady_clock::now();
    for (auto& p : pubs) p->Start();
    WaitUntil([&] { return acked.load() >= total || failures.load() > 0; }, kFillLimit);
    prefilled = acked.load();
    const double fill_s = std::chrono::duration<double>(steady_clock::now() - fill_start).count();
    if (prefilled < total) {
      Abort(runner, "pre-fill: " + std::to_string(prefilled) + " of " + std::to_string(total) +
                        " receipts");
    }
    // The measured window: from the consumers' connect until all is read (or --duration).
    subs = MakeConsumers(runner, consumers, static_cast<size_t>(producers), consumer_handshake,
                         false, received, ready, failed);
    runner.SetPhase(Phase::kMeasure);
    const uint64_t start = runner.measure_start_ns();
    for (auto& c : subs) c->Start();
    const uint64_t limit = start + static_cast<uint64_t>(o.duration_s * 1e9);
    while (received.load(std::memory_order_relaxed) < prefilled && NowNs() < limit) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    const uint64_t end = NowNs();
    runner.SetPhase(Phase::kStop);
    window_s = static_cast<double>(end - start) / 1e9;
    runner.Stop();
    Report r;
    const ThreadStats t = runner.Totals();
    AddCommon(r, runner, t, window_s);
    r.json["topic"] = topic;
    r.Add("consumers", consumers, "consumer sessions",
          std::to_string(consumers) + (consumers > 1 ? " (Shared)" : " (Exclusive)"));
    r.Add("prefilled", prefilled, "messages pre-filled",
          Grouped(static_cast<double>(prefilled)) + " by " + std::to_string(producers) +
              " producer(s) in " + Fixed(fill_s, 2) + " s (" +
              Grouped(static_cast<double>(prefilled) / fill_s) + " msgs/s)");
    const double mps = static_cast<double>(t.deliveries) / window_s;
    r.Add("msgs_per_s", std::llround(mps), "msgs/s consumed (each acked)", Grouped(mps));
    r.json["received"] = t.deliveries;
    r.json["receiver_queue_size"] = kReceiverQueue;
    r.json["complete"] = t.deliveries >= prefilled;
    if (t.deliveries == 0) r.ok = false;
    return r;
  } else {
    subs = MakeConsumers(runner, consumers, 0, consumer_handshake, true, received, ready, failed);
    OpenAll(subs, ready, failed, runner);
    for (int i = 0; i < producers; ++i) {
      WsProducer::Config c = ProducerConfig(runner, producer_handshake);
      c.interval_ns = static_cast<uint64_t>(1e9 * producers / rate);
      c.first_offset_ns = c.interval_ns * static_cast<uint64_t>(i) / static_cast<uint64_t>(producers);
      c.main_latency = false;
      pubs.push_back(std::make_unique<WsProducer>(runner, static_cast<size_t>(consumers + i), std::move(c)));
    }
    for (auto& p : pubs) p->Start();
    window_s = runner.RunWindow();
  }
  runner.Stop();
  const ThreadStats t = runner.Totals();

  Report r;
  AddCommon(r, runner, t, window_s);
  r.json["topic"] = topic;
  r.Add("producers", producers, "producer sessions", std::to_string(producers));
  r.Add("window", std::clamp(o.window, 1, 1000), "publishes in flight per producer (at most)",
        std::to_string(std::clamp(o.window, 1, 1000)));
  if (produce) {
    const double mps = static_cast<double>(t.messages) / window_s;
    r.Add("msgs_per_s", std::llround(mps), "msgs/s with receipts", Grouped(mps));
    r.json["messages"] = t.messages;
    r.Add("latency", LatencyJson(t.latency), "receipt latency (frame sent -> receipt)",
          LatencyLine(t.latency));
    if (t.messages == 0) r.ok = false;
    return r;
  }
  r.Add("consumers", consumers, "consumer sessions", std::to_string(consumers));
  r.Add("rate", rate, "target publish rate", Grouped(rate) + " msgs/s");
  const double pps = static_cast<double>(t.requests) / window_s;
  r.Add("publishes_per_s", std::llround(pps), "publishes/s (receipts)", Grouped(pps));
  const double rps = static_cast<double>(t.deliveries) / window_s;
  r.Add("received_per_s", std::llround(rps), "msgs/s received (each acked)", Grouped(rps));
  r.json["received"] = t.deliveries;
  r.Add("latency", LatencyJson(t.latency),
        "latency (scheduled publish -> consumer frame received)", LatencyLine(t.latency));
  r.Add("publish_latency", LatencyJson(t.publish_latency), "receipt latency (scheduled -> receipt)",
        LatencyLine(t.publish_latency));
  if (t.deliveries == 0) r.ok = false;
  return r;
}

}  // namespace magnetar::bench
