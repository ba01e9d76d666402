#include "bench/magnetar_bench/scenarios.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cmath>
#include <deque>
#include <functional>
#include <stdexcept>

#include "bench/magnetar_bench/http_conn.h"
#include "bench/magnetar_bench/reporting.h"
#include "bench/magnetar_bench/requests.h"
#include "bench/magnetar_bench/ws_conn.h"

namespace magnetar::bench {

namespace {

namespace json = boost::json;
using std::chrono::steady_clock;

constexpr auto kReconnectDelay = std::chrono::milliseconds(100);
constexpr auto kAppPingInterval = std::chrono::seconds(20);  // relay idle timeout is 60 s
constexpr int kPollTimeoutSeconds = 30;
constexpr int kIdlePollTimeoutSeconds = 60;

steady_clock::time_point AtNs(uint64_t ns) {
  return steady_clock::time_point(std::chrono::nanoseconds(ns));
}

// ---------------------------------------------------------------------------------------------
// One blocking request on a private io_context (set-up only: login, the poll's priming publish).

struct SyncResult {
  int status = 0;
  std::string body;
  std::string error;
};

SyncResult SyncRequest(const Target& target, const std::string& request) {
  asio::io_context io;
  struct Listener : HttpListener {
    const std::string* request;
    SyncResult result;
    void OnConnected(HttpConn& c) override { c.Send(*request); }
    void OnResponse(HttpConn& c, const HttpResponse& r, uint64_t) override {
      result.status = r.status;
      result.body.assign(r.body);
      c.Close();
    }
    void OnFailed(HttpConn&, const std::string& what) override {
      if (result.status == 0) result.error = what;
    }
  } listener;
  listener.request = &request;
  HttpConn conn(io, target, std::nullopt, &listener);
  conn.Connect();
  io.run_for(std::chrono::seconds(10));
  if (listener.result.status == 0 && listener.result.error.empty()) {
    listener.result.error = "no response within 10 s";
  }
  return listener.result;
}

// ---------------------------------------------------------------------------------------------
// Fan-out flow control: publishing waits while the subscribers are more than `window` messages
// behind on average. Counts are atomics: the publisher and the subscribers may be on different
// generator threads.

class Publisher;

class DeliveryWindow {
 public:
  DeliveryWindow(uint64_t subscribers, uint64_t window)
      : subscribers_(subscribers), limit_(window * subscribers) {}

  bool MaySend() const {
    const uint64_t expected = published_.load(std::memory_order_relaxed) * subscribers_;
    const uint64_t got = delivered_.load(std::memory_order_relaxed);
    return expected < got + limit_;
  }
  void OnPublished() { published_.fetch_add(1, std::memory_order_relaxed); }
  // Parks the publisher until deliveries catch up; false if it may send right away.
  bool Park(Publisher* p);
  void OnDelivered();

 private:
  const uint64_t subscribers_;
  const uint64_t limit_;
  std::atomic<uint64_t> published_{0};
  std::atomic<uint64_t> delivered_{0};
  std::atomic<Publisher*> parked_{nullptr};
};

// ---------------------------------------------------------------------------------------------
// Publisher: one keep-alive connection publishing one prepared request after another.

class Publisher final : public HttpListener {
 public:
  struct Config {
    PreparedRequest request;
    int expected_status = 201;
    uint64_t messages_per_request = 1;
    uint64_t interval_ns = 0;   // open loop at this interval; 0 = closed loop
    uint64_t first_offset_ns = 0;  // staggers open-loop connections
    bool main_latency = true;   // record into ThreadStats::latency, else publish_latency
    DeliveryWindow* window = nullptr;
  };

  Publisher(Runner& runner, size_t index, Config config)
      : runner_(runner),
        io_(runner.context(index)),
        stats_(runner.stats(index)),
        config_(std::move(config)),
        conn_(io_, runner.target(), runner.SourceAddress(index), this),
        timer_(io_) {}

  void Start() {
    asio::post(io_, [this] { conn_.Connect(); });
  }

  // Sends the next request now (called on this publisher's thread).
  void SendNext() {
    if (runner_.stopping() || !conn_.open()) return;
    if (config_.window && !config_.window->MaySend() && config_.window->Park(this)) return;
    uint64_t intended;
    if (config_.interval_ns) {
      const uint64_t now = NowNs();
      if (next_ns_ > now + 2000) {
        timer_.expires_at(AtNs(next_ns_));
        timer_.async_wait([this](const boost::system::error_code& ec) {
          if (!ec) SendNext();
        });
        return;
      }
      intended = next_ns_;
      next_ns_ += config_.interval_ns;
    } else {
      intended = NowNs();
    }
    intended_ns_ = intended;
    config_.request.Stamp(intended);
    if (config_.window) config_.window->OnPublished();
    conn_.Send(config_.request.bytes);
  }

  asio::io_context& io() { return io_; }

  void OnConnected(HttpConn&) override {
    if (next_ns_ == 0) next_ns_ = NowNs() + config_.first_offset_ns;
    SendNext();
  }

  void OnResponse(HttpConn&, const HttpResponse& r, uint64_t now) override {
    if (r.status == config_.expected_status) {
      if (runner_.InWindow(intended_ns_)) {
        (config_.main_latency ? stats_.latency : stats_.publish_latency).Record(now - intended_ns_);
        ++stats_.requests;
        stats_.messages += config_.messages_per_request;
        runner_.CountMeasured(config_.main_latency ? config_.messages_per_request : 0);
      }
    } else if (!runner_.stopping()) {
      stats_.Error("HTTP " + std::to_string(r.status) + ": " + std::string(r.body.substr(0, 200)));
    }
    SendNext();
  }

  void OnFailed(HttpConn&, const std::string& what) override {
    if (runner_.stopping()) return;
    stats_.Error(what);
    timer_.expires_after(kReconnectDelay);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec && !runner_.stopping()) conn_.Connect();
    });
  }

 private:
  Runner& runner_;
  asio::io_context& io_;
  ThreadStats& stats_;
  Config config_;
  HttpConn conn_;
  asio::steady_timer timer_;
  uint64_t next_ns_ = 0;
  uint64_t intended_ns_ = 0;
};

bool DeliveryWindow::Park(Publisher* p) {
  parked_.store(p, std::memory_order_seq_cst);
  if (!MaySend()) return true;
  // Deliveries caught up meanwhile: take it back unless a subscriber already woke it.
  Publisher* expected = p;
  return !parked_.compare_exchange_strong(expected, nullptr);
}

void DeliveryWindow::OnDelivered() {
  delivered_.fetch_add(1, std::memory_order_relaxed);
  if (parked_.load(std::memory_order_relaxed) == nullptr || !MaySend()) return;
  if (Publisher* p = parked_.exchange(nullptr)) {
    asio::post(p->io(), [p] { p->SendNext(); });
  }
}

// ---------------------------------------------------------------------------------------------
// Subscriber: a WebSocket subscribed to one topic, recording delivery latency from the stamp in
// each message's payload. With `idle`, it only holds the connection.

class Subscriber final : public WsListener {
 public:
  Subscriber(Runner& runner, size_t index, const std::string& handshake, std::string subscribe,
             DeliveryWindow* window, std::atomic<int>* ready, std::atomic<int>* failed)
      : runner_(runner),
        stats_(runner.stats(index)),
        handshake_(handshake),
        subscribe_(std::move(subscribe)),
        window_(window),
        ready_(ready),
        failed_(failed),
        conn_(runner.context(index), runner.subscribe_target(), runner.SourceAddress(index), this,
              index + 1) {}

  void Start() { conn_.Connect(handshake_); }
  void Ping() {
    if (conn_.open()) conn_.SendText(R"({"type":"ping"})");
  }
  std::function<void()> on_settled;  // called once: subscribed or failed (connection pacing)

  void OnOpen(WsConn& c) override { c.SendText(subscribe_); }

  void OnText(WsConn&, std::string_view text, uint64_t now) override {
    // Only our own frames reach here (relay spec §4.2).
    const std::string_view type = FrameType(text);
    if (type == "message") {
      if (window_) window_->OnDelivered();
      if (auto stamp = FindStamp(text); stamp && runner_.InWindow(*stamp)) {
        stats_.latency.Record(now - *stamp);
        ++stats_.deliveries;
        runner_.CountMeasured(1);
      }
      return;
    }
    if (!subscribed_ && type == "subscribed") {
      subscribed_ = true;
      ready_->fetch_add(1);
      Settle();
    } else if (type == "error") {
      stats_.Error("WebSocket error frame: " + std::string(text.substr(0, 200)));
    }
  }

  void OnClosed(WsConn&, const std::string& why) override {
    if (runner_.stopping()) return;
    stats_.Error("WebSocket: " + why);
    if (!subscribed_) failed_->fetch_add(1);
    Settle();
  }

 private:
  void Settle() {
    if (on_settled) {
      auto f = std::move(on_settled);
      on_settled = nullptr;
      f();
    }
  }

  Runner& runner_;
  ThreadStats& stats_;
  const std::string& handshake_;
  std::string subscribe_;
  DeliveryWindow* window_;
  std::atomic<int>* ready_;
  std::atomic<int>* failed_;
  bool subscribed_ = false;
  WsConn conn_;
};

// Starts connections on one generator thread with at most `limit` handshakes in progress, so
// tens of thousands of connections do not hit the server's accept backlog at once.
class ConnectPacer {
 public:
  explicit ConnectPacer(size_t limit) : limit_(limit) {}
  void Add(std::function<void(std::function<void()> done)> start) {
    queue_.push_back(std::move(start));
    Pump();
  }

 private:
  void Pump() {
    while (active_ < limit_ && !queue_.empty()) {
      auto start = std::move(queue_.front());
      queue_.pop_front();
      ++active_;
      start([this] {
        --active_;
        Pump();
      });
    }
  }
  size_t limit_;
  size_t active_ = 0;
  std::deque<std::function<void(std::function<void()>)>> queue_;
};

// Sends an app-level ping on every subscriber of one thread, periodically (the relay closes a
// WebSocket whose client stays silent for ws_idle_seconds).
class PingSweep {
 public:
  PingSweep(asio::io_context& io, std::vector<Subscriber*> subs) : timer_(io), subs_(std::move(subs)) {}
  void Start() {
    timer_.expires_after(kAppPingInterval);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      for (auto* s : subs_) s->Ping();
      Start();
    });
  }

 private:
  asio::steady_timer timer_;
  std::vector<Subscriber*> subs_;
};

// Waits (on the main thread) until `count() >= target` or the deadline.
template <typename F>
bool WaitFor(F count, int target, std::chrono::seconds limit) {
  const auto deadline = steady_clock::now() + limit;
  while (count() < target) {
    if (steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

std::string TopicOf(const Options& o, std::string_view prefix) {
  return o.topic.empty() ? FreshTopic(prefix) : o.topic;
}

// Subscribes `n` WebSockets to `topic`, paced; returns once all answered or failed.
std::vector<std::unique_ptr<Subscriber>> SubscribeAll(
    Runner& runner, int n, const std::string& handshake, const std::string& topic,
    DeliveryWindow* window, std::atomic<int>& ready, std::atomic<int>& failed,
    std::vector<std::unique_ptr<ConnectPacer>>& pacers,
    std::vector<std::unique_ptr<PingSweep>>& sweeps) {
  std::vector<std::unique_ptr<Subscriber>> subs;
  std::vector<std::vector<Subscriber*>> per_thread(runner.thread_count());
  const std::string frame = SubscribeFrame(topic, "last");
  for (int i = 0; i < n; ++i) {
    subs.push_back(std::make_unique<Subscriber>(runner, static_cast<size_t>(i), handshake, frame,
                                                window, &ready, &failed));
    per_thread[static_cast<size_t>(i) % runner.thread_count()].push_back(subs.back().get());
  }
  for (size_t t = 0; t < runner.thread_count(); ++t) {
    auto* pacer = pacers[t].get();
    sweeps.push_back(std::make_unique<PingSweep>(runner.context(t), per_thread[t]));
    asio::post(runner.context(t), [pacer, sweep = sweeps.back().get(), list = per_thread[t]] {
      sweep->Start();
      for (Subscriber* s : list) {
        pacer->Add([s](std::function<void()> done) {
          s->on_settled = std::move(done);
          s->Start();
        });
      }
    });
  }
  WaitFor([&] { return ready.load() + failed.load(); }, n, std::chrono::seconds(120));
  return subs;
}

std::vector<std::unique_ptr<ConnectPacer>> MakePacers(Runner& runner) {
  std::vector<std::unique_ptr<ConnectPacer>> pacers;
  for (size_t t = 0; t < runner.thread_count(); ++t) {
    pacers.push_back(std::make_unique<ConnectPacer>(
        static_cast<size_t>(std::max(1, runner.options().connect_concurrency))));
  }
  return pacers;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::string Login(const Target& target, const std::string& user, const std::string& password) {
  SyncResult r = SyncRequest(target, LoginRequest(target, user, password));
  if (!r.error.empty()) throw std::runtime_error("login: " + r.error);
  if (r.status != 200) {
    throw std::runtime_error("login: HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 300));
  }
  const std::string_view token = JsonStringField(r.body, "access_token");
  if (token.empty()) throw std::runtime_error("login: no access_token in " + r.body.substr(0, 300));
  return std::string(token);
}

Report RunPublish(Runner& runner, bool bulk) {
  const Options& o = runner.options();
  const int n = o.connections > 0 ? o.connections : 1;
  const std::string topic = TopicOf(o, bulk ? "bench-bulk" : "bench-publish");
  std::vector<std::unique_ptr<Publisher>> pubs;
  for (int i = 0; i < n; ++i) {
    Publisher::Config c;
    c.request = bulk ? BulkRequest(runner.target(), runner.token(), topic, o.payload_bytes, o.batch)
                     : PublishRequest(runner.target(), runner.token(), topic, o.payload_bytes);
    c.expected_status = bulk ? 207 : 201;
    c.messages_per_request = bulk ? static_cast<uint64_t>(o.batch) : 1;
    if (o.rate > 0) {
      // --rate counts requests for publish and messages for bulk, over all connections.
      const double per_conn = o.rate / n / (bulk ? o.batch : 1);
      c.interval_ns = static_cast<uint64_t>(1e9 / per_conn);
      c.first_offset_ns = c.interval_ns * static_cast<uint64_t>(i) / static_cast<uint64_t>(n);
    }
    pubs.push_back(std::make_unique<Publisher>(runner, static_cast<size_t>(i), std::move(c)));
  }
  runner.Start();
  for (auto& p : pubs) p->Start();
  const double window = runner.RunWindow();
  runner.Stop();
  const ThreadStats t = runner.Totals();

  Report r;
  AddCommon(r, runner, t, window);
  r.Add("connections", n, "connections", std::to_string(n) + " keep-alive");
  r.json["topic"] = topic;
  if (o.rate > 0) r.json["target_rate"] = o.rate;
  if (bulk) r.json["batch"] = o.batch;
  const double rps = static_cast<double>(t.requests) / window;
  r.Add("requests_per_s", std::llround(rps), "requests/s", Grouped(rps));
  if (bulk) {
    const double mps = static_cast<double>(t.messages) / window;
    r.Add("messages_per_s", std::llround(mps), "messages/s", Grouped(mps));
  }
  r.json["requests"] = t.requests;
  r.json["messages"] = t.messages;
  r.Add("latency", LatencyJson(t.latency), "latency (request -> response)", LatencyLine(t.latency));
  if (t.requests == 0) r.ok = false;
  return r;
}

Report RunE2e(Runner& runner, bool fanout) {
  const Options& o = runner.options();
  const int publishers = o.connections > 0 ? o.connections : (fanout ? 1 : 4);
  const int subscribers = o.subscribers > 0 ? o.subscribers : (fanout ? 1000 : 1);
  const double rate = fanout ? o.rate : (o.rate > 0 ? o.rate : 10000);
  const std::string topic = TopicOf(o, fanout ? "bench-fanout" : "bench-e2e");
  const std::string handshake = WsHandshake(runner.subscribe_target(), runner.token());

  std::unique_ptr<DeliveryWindow> window;
  if (fanout && o.window > 0) {
    window = std::make_unique<DeliveryWindow>(static_cast<uint64_t>(subscribers),
                                              static_cast<uint64_t>(o.window));
  }
  runner.Start();
  auto pacers = MakePacers(runner);
  std::vector<std::unique_ptr<PingSweep>> sweeps;
  std::atomic<int> ready{0}, failed{0};
  auto subs = SubscribeAll(runner, subscribers, handshake, topic, window.get(), ready, failed,
                           pacers, sweeps);

  std::vector<std::unique_ptr<Publisher>> pubs;
  for (int i = 0; i < publishers; ++i) {
    Publisher::Config c;
    c.request = PublishRequest(runner.target(), runner.token(), topic, o.payload_bytes);
    c.main_latency = false;
    c.window = window.get();
    if (rate > 0) {
      c.interval_ns = static_cast<uint64_t>(1e9 * publishers / rate);
      c.first_offset_ns = c.interval_ns * static_cast<uint64_t>(i) / static_cast<uint64_t>(publishers);
    }
    // Publishers after the subscribers in the thread rotation.
    pubs.push_back(std::make_unique<Publisher>(runner, static_cast<size_t>(subscribers + i), std::move(c)));
  }
  for (auto& p : pubs) p->Start();
  const double window_s = runner.RunWindow();
  runner.Stop();
  const ThreadStats t = runner.Totals();

  Report r;
  AddCommon(r, runner, t, window_s);
  r.json["topic"] = topic;
  r.Add("publishers", publishers, "publisher connections", std::to_string(publishers));
  r.Add("subscribers", subscribers, "WebSocket subscribers",
        std::to_string(ready.load()) + " of " + std::to_string(subscribers) + " subscribed");
  if (rate > 0) r.Add("target_rate", rate, "target publish rate", Grouped(rate) + " msgs/s");
  if (fanout) {
    r.Add("window", o.window, "flow control (messages behind, per subscriber)",
          o.window > 0 ? std::to_string(o.window) : "none");
  }
  const double pps = static_cast<double>(t.requests) / window_s;
  r.Add("publishes_per_s", std::llround(pps), "publishes/s", Grouped(pps));
  const double dps = static_cast<double>(t.deliveries) / window_s;
  r.Add("deliveries_per_s", std::llround(dps), "deliveries/s", Grouped(dps));
  r.json["publishes"] = t.requests;
  r.json["deliveries"] = t.deliveries;
  r.Add("latency", LatencyJson(t.latency), "delivery latency (publish sent -> frame received)",
        LatencyLine(t.latency));
  r.Add("publish_latency", LatencyJson(t.publish_latency), "publish latency (request -> 201)",
        LatencyLine(t.publish_latency));
  if (ready.load() < subscribers || t.deliveries == 0) r.ok = false;
  return r;
}

// ---------------------------------------------------------------------------------------------
// poll

namespace {

class PollRound;

// A long-poll waiter that keeps its cursor: after each answer it polls again after the last id.
class Waiter final : public HttpListener {
 public:
  Waiter(Runner& runner, size_t index, std::string topic, std::string cursor, PollRound* round,
         int timeout_s)
      : runner_(runner),
        stats_(runner.stats(index)),
        topic_(std::move(topic)),
        cursor_(std::move(cursor)),
        round_(round),
        timeout_s_(timeout_s),
        conn_(runner.context(index), runner.target(), runner.SourceAddress(index), this),
        timer_(runner.context(index)) {}

  void Start() { conn_.Connect(); }
  bool connected() const { return conn_.open(); }
  std::function<void()> on_settled;  // called once: request sent or failed (connection pacing)

  void OnConnected(HttpConn&) override {
    Poll();
    Settle();
  }
  void OnResponse(HttpConn&, const HttpResponse& r, uint64_t now) override;
  void OnFailed(HttpConn&, const std::string& what) override {
    if (runner_.stopping()) return;
    stats_.Error("poll: " + what);
    Settle();
    timer_.expires_after(kReconnectDelay);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec && !runner_.stopping()) conn_.Connect();
    });
  }

 private:
  void Poll() {
    if (runner_.stopping()) return;
    PollRequest(request_, runner_.target(), runner_.token(), topic_, cursor_, timeout_s_);
    conn_.Send(request_);
  }
  void Settle() {
    if (on_settled) {
      auto f = std::move(on_settled);
      on_settled = nullptr;
      f();
    }
  }

  Runner& runner_;
  ThreadStats& stats_;
  std::string topic_;
  std::string cursor_;
  std::string request_;
  PollRound* round_;
  int timeout_s_;
  HttpConn conn_;
  asio::steady_timer timer_;
};

// The poll scenario's publisher: one message per round, published once every waiter has
// answered the previous one and had --poll-gap-ms to park again. A waiter cannot miss a round's
// message (it polls with the cursor of the last one it got, so a message that arrives between
// two polls comes back at once from the catch-up), so rounds need no timeout.
class PollRound final : public HttpListener {
 public:
  PollRound(Runner& runner, size_t index, const std::string& topic, int waiters)
      : runner_(runner),
        io_(runner.context(index)),
        stats_(runner.stats(index)),
        waiters_(waiters),
        request_(PublishRequest(runner.target(), runner.token(), topic, runner.options().payload_bytes)),
        conn_(io_, runner.target(), runner.SourceAddress(index), this),
        timer_(io_),
        gap_(std::chrono::nanoseconds(static_cast<int64_t>(runner.options().poll_gap_ms * 1e6))) {}

  void Start() {
    asio::post(io_, [this] { conn_.Connect(); });
  }
  // A waiter got messages (any thread).
  void OnWaiterAnswered() { Arrive(); }

  void OnConnected(HttpConn&) override { NextRoundAfterGap(); }
  void OnResponse(HttpConn&, const HttpResponse& r, uint64_t now) override {
    if (r.status == 201) {
      if (runner_.InWindow(sent_ns_)) stats_.publish_latency.Record(now - sent_ns_);
    } else if (!runner_.stopping()) {
      stats_.Error("HTTP " + std::to_string(r.status) + ": " + std::string(r.body.substr(0, 200)));
    }
    Arrive();
  }
  void OnFailed(HttpConn&, const std::string& what) override {
    if (runner_.stopping()) return;
    stats_.Error(what);
    timer_.expires_after(kReconnectDelay);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec && !runner_.stopping()) conn_.Connect();
    });
  }

 private:
  void Arrive() {
    if (pending_.fetch_sub(1) == 1) asio::post(io_, [this] { NextRoundAfterGap(); });
  }
  void NextRoundAfterGap() {
    if (runner_.stopping()) return;
    timer_.expires_after(gap_);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || runner_.stopping()) return;
      // The round ends when the publish answered and every waiter answered.
      pending_.store(waiters_ + 1);
      sent_ns_ = NowNs();
      request_.Stamp(sent_ns_);
      conn_.Send(request_.bytes);
    });
  }

  Runner& runner_;
  asio::io_context& io_;
  ThreadStats& stats_;
  int waiters_;
  PreparedRequest request_;
  HttpConn conn_;
  asio::steady_timer timer_;
  std::chrono::nanoseconds gap_;
  std::atomic<int> pending_{0};
  uint64_t sent_ns_ = 0;
};

void Waiter::OnResponse(HttpConn&, const HttpResponse& r, uint64_t now) {
  if (r.status != 200) {
    if (!runner_.stopping()) {
      stats_.Error("poll: HTTP " + std::to_string(r.status) + ": " + std::string(r.body.substr(0, 200)));
    }
    timer_.expires_after(kReconnectDelay);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Poll();
    });
    return;
  }
  bool any = false;
  ForEachStamp(r.body, [&](uint64_t stamp) {
    any = true;
    if (runner_.InWindow(stamp)) {
      stats_.latency.Record(now - stamp);
      ++stats_.deliveries;
      runner_.CountMeasured(1);
    }
  });
  if (const std::string_view id = LastMessageId(r.body); !id.empty()) cursor_.assign(id);
  Poll();
  if (any && round_) round_->OnWaiterAnswered();
}

}  // namespace

Report RunPoll(Runner& runner) {
  const Options& o = runner.options();
  const int n = o.connections > 0 ? o.connections : 1;
  const std::string topic = TopicOf(o, "bench-poll");
  // A first message gives the waiters a cursor, so they wait for what comes after it.
  const PreparedRequest prime = PublishRequest(runner.target(), runner.token(), topic, o.payload_bytes);
  SyncResult primed = SyncRequest(runner.target(), prime.bytes);
  if (primed.status != 201) {
    throw std::runtime_error("poll: priming publish failed: " +
                             (primed.error.empty() ? "HTTP " + std::to_string(primed.status) + " " + primed.body
                                                   : primed.error));
  }
  const std::string cursor(LastMessageId(primed.body));

  auto round = std::make_unique<PollRound>(runner, static_cast<size_t>(n), topic, n);
  std::vector<std::unique_ptr<Waiter>> waiters;
  for (int i = 0; i < n; ++i) {
    waiters.push_back(std::make_unique<Waiter>(runner, static_cast<size_t>(i), topic, cursor,
                                               round.get(), kPollTimeoutSeconds));
  }
  runner.Start();
  for (int i = 0; i < n; ++i) {
    asio::post(runner.context(static_cast<size_t>(i)), [w = waiters[static_cast<size_t>(i)].get()] { w->Start(); });
  }
  // Give the waiters a moment to park before the first round.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  round->Start();
  const double window = runner.RunWindow();
  runner.Stop();
  const ThreadStats t = runner.Totals();

  Report r;
  AddCommon(r, runner, t, window);
  r.json["topic"] = topic;
  r.Add("waiters", n, "waiters", std::to_string(n));
  r.Add("poll_gap_ms", o.poll_gap_ms, "pause before each publish", Fixed(o.poll_gap_ms, 1) + " ms");
  const double wps = static_cast<double>(t.deliveries) / window;
  r.Add("wakeups_per_s", std::llround(wps), "wake-ups/s", Grouped(wps));
  r.json["wakeups"] = t.deliveries;
  r.Add("latency", LatencyJson(t.latency), "wake latency (publish sent -> poll answered)",
        LatencyLine(t.latency));
  r.Add("publish_latency", LatencyJson(t.publish_latency), "publish latency (request -> 201)",
        LatencyLine(t.publish_latency));
  if (t.deliveries == 0) r.ok = false;
  return r;
}

// ---------------------------------------------------------------------------------------------
// connections

Report RunConnections(Runner& runner) {
  const Options& o = runner.options();
  const int waiters_n = o.waiters;
  const int ws_n = o.idle_ws;
  const std::string poll_topic = TopicOf(o, "bench-idle-poll");
  const std::string ws_topic = poll_topic + "-ws";
  const std::string handshake = WsHandshake(runner.target(), runner.token());
  auto rss = [&] { return ReadProcStatusBytes(o.server_pid, "VmRSS"); };

  runner.Start();
  auto pacers = MakePacers(runner);
  const uint64_t rss0 = rss();

  // Waiters: each holds one long-poll on a topic nobody publishes to (re-polls on timeout).
  std::vector<std::unique_ptr<Waiter>> waiters;
  std::atomic<int> waiters_settled{0};
  for (int i = 0; i < waiters_n; ++i) {
    waiters.push_back(std::make_unique<Waiter>(runner, static_cast<size_t>(i), poll_topic, "",
                                               nullptr, kIdlePollTimeoutSeconds));
  }
  for (size_t t = 0; t < runner.thread_count(); ++t) {
    std::vector<Waiter*> mine;
    for (size_t i = t; i < waiters.size(); i += runner.thread_count()) mine.push_back(waiters[i].get());
    asio::post(runner.context(t), [pacer = pacers[t].get(), mine, &waiters_settled] {
      for (Waiter* w : mine) {
        pacer->Add([w, &waiters_settled](std::function<void()> done) {
          w->on_settled = [done, &waiters_settled] {
            waiters_settled.fetch_add(1);
            done();
          };
          w->Start();
        });
      }
    });
  }
  WaitFor([&] { return waiters_settled.load(); }, waiters_n, std::chrono::seconds(120));
  // The last requests reach the server and park (200 ms plus 1 ms per 100 waiters, up to 1 s).
  auto settle = [](int n) { return std::chrono::milliseconds(std::min(1000, 200 + n / 100)); };
  std::this_thread::sleep_for(settle(waiters_n));
  const uint64_t rss1 = rss();

  std::vector<std::unique_ptr<PingSweep>> sweeps;
  std::atomic<int> ready{0}, failed{0};
  auto subs = SubscribeAll(runner, ws_n, handshake, ws_topic, nullptr, ready, failed, pacers, sweeps);
  std::this_thread::sleep_for(settle(ws_n));
  const uint64_t rss2 = rss();
  // Hold them for the window (the warm-up is not needed: nothing is timed).
  const auto t0 = steady_clock::now();
  runner.SetPhase(Phase::kMeasure);
  std::this_thread::sleep_for(std::chrono::duration<double>(o.duration_s));
  const uint64_t rss3 = rss();
  const uint64_t hwm = ReadProcStatusBytes(o.server_pid, "VmHWM");
  const double held = std::chrono::duration<double>(steady_clock::now() - t0).count();
  runner.SetPhase(Phase::kStop);
  runner.Stop();
  const ThreadStats t = runner.Totals();

  Report r;
  AddCommon(r, runner, t, held);
  const int ws_ok = ready.load();
  r.json["source_addresses"] = o.source_addresses;
  int waiters_ok = 0;
  for (const auto& w : waiters) waiters_ok += w->connected() ? 1 : 0;
  r.Add("waiters", waiters_ok, "long-poll waiters held",
        std::to_string(waiters_ok) + " of " + std::to_string(waiters_n));
  r.json["waiters_requested"] = waiters_n;
  r.json["idle_ws_requested"] = ws_n;
  r.Add("idle_ws", ws_ok, "idle WebSockets held",
        std::to_string(ws_ok) + " of " + std::to_string(ws_n));
  if (o.server_pid > 0) {
    auto mib = [](uint64_t b) { return Fixed(static_cast<double>(b) / (1 << 20), 1) + " MiB"; };
    r.Add("rss_baseline_bytes", rss0, "server RSS before", mib(rss0));
    r.Add("rss_waiters_bytes", rss1, "server RSS with the waiters", mib(rss1));
    r.Add("rss_all_bytes", rss2, "server RSS with waiters + WebSockets", mib(rss2));
    r.Add("rss_end_bytes", rss3, "server RSS at the end of the hold", mib(rss3));
    r.Add("hwm_bytes", hwm, "server peak RSS (VmHWM)", mib(hwm));
    const double per_waiter =
        waiters_ok > 0 ? (static_cast<double>(rss1) - static_cast<double>(rss0)) / waiters_ok : 0;
    const double per_ws =
        ws_ok > 0 ? (static_cast<double>(std::max(rss2, rss3)) - static_cast<double>(rss1)) / ws_ok : 0;
    r.Add("bytes_per_waiter", std::llround(per_waiter), "RSS per waiter", Grouped(per_waiter) + " B");
    r.Add("bytes_per_ws", std::llround(per_ws), "RSS per idle WebSocket", Grouped(per_ws) + " B");
    // The issue's target load, from the measured per-connection costs (the descriptor limit may
    // not allow holding it for real).
    const double projected = static_cast<double>(rss0) + 10000 * per_waiter + 50000 * per_ws;
    r.Add("projected_rss_10k_waiters_50k_ws_bytes", std::llround(projected),
          "projected RSS, 10,000 waiters + 50,000 WebSockets", mib(static_cast<uint64_t>(projected)));
  }
  if (ws_ok < ws_n || waiters_ok < waiters_n) r.ok = false;
  return r;
}

}  // namespace magnetar::bench
