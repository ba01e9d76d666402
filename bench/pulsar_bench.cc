// magnetar-pulsar-bench: the Pulsar binary protocol measured through the C++ client
// (src/client/pulsar). It measures, it never asserts; bench/run.sh records its JSON line.
//
//   magnetar-pulsar-bench --service-url pulsar://127.0.0.1:6650 --token JWT --scenario produce
//     produce  batched producer, send_async as fast as the pending window allows: msgs/s
//     consume  N messages produced first (batched), then one consumer reads them all: msgs/s
//     latency  messages at a fixed rate, each stamped with its send time; the consumer's
//              receive time minus that: p50 / p99 / max in microseconds

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client/pulsar/pulsar_client.h"

namespace mp = magnetar::client::pulsar;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

struct Args {
  std::string service_url = "pulsar://127.0.0.1:6650";
  std::string token;
  std::string scenario = "produce";
  std::string topic;
  int messages = 1'000'000;
  int size = 100;
  int rate = 10'000;
  double duration = 5;
  bool batching = true;
  int batch = 1000;
  int pending = 20'000;
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string TopicName(const Args& a) {
  if (!a.topic.empty()) return a.topic;
  return "persistent://public/default/bench-" + a.scenario + "-" +
         std::to_string(Clock::now().time_since_epoch().count());
}

int Produce(mp::PulsarClient& client, const Args& a, const std::string& topic, int count,
            double* seconds, int* failed) {
  mp::ProducerOptions po;
  po.topic = topic;
  po.batching = a.batching;
  po.batch_max_messages = static_cast<uint32_t>(a.batch);
  po.max_pending_messages = static_cast<size_t>(a.pending);
  mp::Producer producer = client.create_producer(po);
  const std::string payload(static_cast<size_t>(a.size), 'x');
  std::atomic<int> errors{0};
  const auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    producer.send_async({.payload = payload}, [&errors](const mp::SendResult& r) {
      if (r.error) ++errors;
    });
  }
  producer.flush();
  *seconds = Seconds(Clock::now() - start);
  *failed = errors.load();
  producer.close();
  return count;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"magnetar-pulsar-bench: Pulsar binary protocol throughput and latency"};
  app.add_option("--service-url", a.service_url)->capture_default_str();
  app.add_option("--token", a.token, "Access token (the relay JWT)")->required();
  app.add_option("--scenario", a.scenario, "produce, consume or latency")
      ->check(CLI::IsMember({"produce", "consume", "latency"}));
  app.add_option("--topic", a.topic, "Topic (default: a fresh one per run)");
  app.add_option("--messages", a.messages, "produce/consume: messages")->capture_default_str();
  app.add_option("--size", a.size, "Payload bytes")->capture_default_str();
  app.add_option("--rate", a.rate, "latency: messages per second")->capture_default_str();
  app.add_option("--duration", a.duration, "latency: seconds")->capture_default_str();
  app.add_option("--batch", a.batch, "Messages per batch")->capture_default_str();
  app.add_option("--pending", a.pending, "Producer pending window")->capture_default_str();
  bool no_batching = false;
  app.add_flag("--no-batching", no_batching, "One SEND per message");
  CLI11_PARSE(app, argc, argv);
  a.batching = !no_batching;

  try {
    mp::ClientOptions co;
    co.service_url = a.service_url;
    co.token = a.token;
    mp::PulsarClient client(co);
    const std::string topic = TopicName(a);
    if (a.scenario == "produce") {
      double seconds = 0;
      int failed = 0;
      Produce(client, a, topic, a.messages, &seconds, &failed);
      std::printf(
          "{\"ok\":%s,\"scenario\":\"pulsar-produce\",\"messages\":%d,\"size\":%d,\"batching\":%s,"
          "\"seconds\":%.3f,\"msgs_per_s\":%.0f,\"failed\":%d}\n",
          failed == 0 ? "true" : "false", a.messages, a.size, a.batching ? "true" : "false",
          seconds, a.messages / seconds, failed);
      return failed == 0 ? 0 : 1;
    }
    if (a.scenario == "consume") {
      double produce_seconds = 0;
      int failed = 0;
      Produce(client, a, topic, a.messages, &produce_seconds, &failed);
      mp::ConsumerOptions cons;
      cons.topic = topic;
      cons.subscription = "bench";
      cons.initial_position = mp::InitialPosition::kEarliest;
      cons.receiver_queue_size = 10'000;
      mp::Consumer consumer = client.subscribe(cons);
      int received = 0;
      const auto start = Clock::now();
      mp::MessageId last;
      while (received < a.messages - failed) {
        auto m = consumer.receive(10s);
        if (!m) break;
        last = m->id;
        if (++received % 1000 == 0) consumer.acknowledge_cumulative(last);
      }
      const double seconds = Seconds(Clock::now() - start);
      consumer.acknowledge_cumulative(last);
      std::printf(
          "{\"ok\":%s,\"scenario\":\"pulsar-consume\",\"messages\":%d,\"received\":%d,"
          "\"size\":%d,\"seconds\":%.3f,\"msgs_per_s\":%.0f}\n",
          received == a.messages - failed && failed == 0 ? "true" : "false", a.messages, received,
          a.size, seconds, received / seconds);
      return 0;
    }
    // latency: open loop at --rate; each payload carries its send time (steady clock, ns).
    mp::ConsumerOptions cons;
    cons.topic = topic;
    cons.subscription = "bench";
    cons.receiver_queue_size = 10'000;
    mp::Consumer consumer = client.subscribe(cons);
    mp::ProducerOptions po;
    po.topic = topic;
    po.batching = false;
    po.max_pending_messages = static_cast<size_t>(a.pending);
    mp::Producer producer = client.create_producer(po);
    const int total = static_cast<int>(a.rate * a.duration);
    std::vector<int64_t> latencies;
    latencies.reserve(static_cast<size_t>(total));
    std::thread reader([&] {
      for (int i = 0; i < total; ++i) {
        auto m = consumer.receive(10s);
        if (!m) break;
        const int64_t sent = std::stoll(m->payload.substr(0, m->payload.find(' ')));
        const int64_t now = Clock::now().time_since_epoch().count();
        latencies.push_back((now - sent) / 1000);
        consumer.acknowledge(m->id);
      }
    });
    const auto start = Clock::now();
    const auto interval = std::chrono::nanoseconds(1'000'000'000LL / std::max(1, a.rate));
    const std::string pad(static_cast<size_t>(std::max(0, a.size - 20)), 'x');
    for (int i = 0; i < total; ++i) {
      std::this_thread::sleep_until(start + interval * i);
      producer.send_async(
          {.payload = std::to_string(Clock::now().time_since_epoch().count()) + " " + pad},
          [](const mp::SendResult&) {});
    }
    producer.flush();
    reader.join();
    std::sort(latencies.begin(), latencies.end());
    auto pct = [&](double p) -> int64_t {
      if (latencies.empty()) return -1;
      return latencies[std::min(latencies.size() - 1, static_cast<size_t>(p * latencies.size()))];
    };
    const double seconds = Seconds(Clock::now() - start);
    // "latency" in the shape bench/report.py prints for every scenario.
    std::printf(
        "{\"ok\":%s,\"scenario\":\"pulsar-latency\",\"rate\":%d,\"messages\":%d,"
        "\"received\":%zu,\"received_per_s\":%.0f,\"latency\":{\"count\":%zu,\"p50_us\":%lld,"
        "\"p90_us\":%lld,\"p99_us\":%lld,\"p999_us\":%lld,\"max_us\":%lld}}\n",
        static_cast<int>(latencies.size()) == total ? "true" : "false", a.rate, total,
        latencies.size(), latencies.size() / seconds, latencies.size(),
        static_cast<long long>(pct(0.5)), static_cast<long long>(pct(0.9)),
        static_cast<long long>(pct(0.99)), static_cast<long long>(pct(0.999)),
        static_cast<long long>(latencies.empty() ? -1 : latencies.back()));
    return 0;
  } catch (const std::exception& e) {
    std::printf("{\"ok\":false,\"error\":\"%s\"}\n", e.what());
    return 1;
  }
}
