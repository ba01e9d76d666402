// magnetar-bench: a load generator for the relay API (shared/spec/relay-http.md §1-§4). It speaks
// only the public contract (form login, bearer token, publish, bulk, long-poll with cursors, the
// /ws push channel), so it measures Magnetar or any other server with the same API.
//
//   magnetar-bench --url http://127.0.0.1:9100 --user admin --password … --scenario publish
//                  --connections 64 --duration 10 --warmup 2 [--json]
//
// Exit status: 0 when the run succeeded without errors, 2 when requests failed or nothing was
// measured, 1 when it could not start (bad options, login refused, server unreachable).

#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <csignal>
#include <iostream>

#include "bench/magnetar_bench/common.h"
#include "bench/magnetar_bench/scenarios.h"

namespace {

using namespace magnetar::bench;

// Tens of thousands of sockets need descriptors: take the hard limit.
uint64_t RaiseDescriptorLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  getrlimit(RLIMIT_NOFILE, &lim);
  return lim.rlim_cur;
}

void PrintTable(const Options& o, const Report& r) {
  std::cout << "magnetar-bench " << o.scenario << " against " << o.url << "\n";
  size_t width = 0;
  for (const auto* part : {&r.lines, &r.footer}) {
    for (const auto& [label, _] : *part) width = std::max(width, label.size());
  }
  for (const auto* part : {&r.lines, &r.footer}) {
    for (const auto& [label, value] : *part) {
      std::cout << "  " << label << std::string(width - label.size() + 2, ' ') << value << "\n";
    }
  }
  std::cout << (r.ok ? "  result: ok" : "  result: FAILED (errors or nothing measured)") << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"magnetar-bench: load generator for the relay HTTP/WebSocket API"};
  // Given twice, the last value wins (so a wrapper's defaults can be overridden).
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--url", o.url, "Base URL of the relay server")->capture_default_str();
  app.add_option("--subscribe-url", o.subscribe_url,
                 "e2e/fanout: WebSocket subscribers connect here (e.g. another node of a cluster)");
  app.add_option("--user", o.user, "Log in with this user (POST /auth/login)");
  app.add_option("--password", o.password, "Its password (or MAGNETAR_BENCH_PASSWORD)")
      ->envname("MAGNETAR_BENCH_PASSWORD");
  app.add_option("--token", o.token, "Use this access token instead of logging in")
      ->envname("MAGNETAR_BENCH_TOKEN");
  app.add_option("--scenario", o.scenario,
                 "publish|bulk|poll|e2e|fanout|connections|pulsar-ws-produce|pulsar-ws-consume|"
                 "pulsar-ws-latency")
      ->check(CLI::IsMember({"publish", "bulk", "poll", "e2e", "fanout", "connections",
                             "pulsar-ws-produce", "pulsar-ws-consume", "pulsar-ws-latency"}))
      ->capture_default_str();
  app.add_option("--connections", o.connections,
                 "Publisher connections (poll: waiters). Default: 1; e2e: 4");
  app.add_option("--duration", o.duration_s, "Measured seconds")->capture_default_str();
  app.add_option("--count", o.count, "Stop after this many measured operations instead (publish/bulk: messages; poll: wake-ups; e2e/fanout: deliveries)");
  app.add_option("--warmup", o.warmup_s, "Seconds before measuring (excluded)")
      ->capture_default_str();
  app.add_option("--rate", o.rate,
                 "Total publish rate (messages/s; bulk: messages/s); 0 = closed loop. "
                 "e2e default 10000");
  app.add_option("--batch", o.batch, "Messages per bulk request")->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--subscribers", o.subscribers, "WebSocket subscribers (e2e: 1, fanout: 1000)");
  app.add_option("--payload-bytes", o.payload_bytes, "Size of each message's JSON payload")
      ->capture_default_str()->check(CLI::Range(37, 1 << 20));
  app.add_option("--topic", o.topic, "Topic (default: a fresh one per run)");
  app.add_option("--source-addresses", o.source_addresses,
                 "Spread connections over 127.0.0.1..127.0.0.N (more than 64k sockets)")
      ->capture_default_str()->check(CLI::Range(1, 254));
  app.add_option("--server-pid", o.server_pid, "Server process for RSS figures (/proc/<pid>)");
  app.add_option("--threads", o.threads, "Generator threads")->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_flag("--json", o.json, "Print the result as JSON");
  app.add_option("--waiters", o.waiters, "connections: long-poll waiters to hold")
      ->capture_default_str();
  app.add_option("--idle-ws", o.idle_ws, "connections: idle WebSockets to hold")
      ->capture_default_str();
  app.add_option("--window", o.window,
                 "fanout: messages the subscribers may be behind before the publisher waits "
                 "(0 = no flow control)")
      ->capture_default_str();
  app.add_option("--poll-gap-ms", o.poll_gap_ms, "poll: pause before each publish (waiters park)")
      ->capture_default_str();
  app.add_option("--mark-signal", o.mark_signal,
                 "Send this signal number to --server-pid when the measured window opens and "
                 "closes (e.g. for bench/malloc_counter.so)");
  app.add_option("--mark-command", o.mark_command,
                 "Run `<command> start` just before the measured window opens and "
                 "`<command> stop` just after it closes (e.g. to switch a profiler on and off)");
  app.add_flag("--login-only", o.login_only,
               "Log in with --user/--password, print the access token and exit (scripts log in "
               "once and pass --token to every run)");
  app.add_option("--connect-concurrency", o.connect_concurrency,
                 "Connection handshakes in flight per generator thread")
      ->capture_default_str();
  app.add_option("--messages", o.messages,
                 "pulsar-ws-consume: messages pre-filled before the consumers read (default "
                 "100000)");
  app.add_option("--tenant", o.tenant,
                 "pulsar-ws-*: tenant of persistent://<tenant>/default/<topic> (default: the "
                 "token's username claim)");
  CLI11_PARSE(app, argc, argv);

  std::signal(SIGPIPE, SIG_IGN);
  const uint64_t fd_limit = RaiseDescriptorLimit();
  if (o.scenario == "connections") {
    const uint64_t wanted = static_cast<uint64_t>(o.waiters) + static_cast<uint64_t>(o.idle_ws) + 64;
    if (wanted > fd_limit) {
      std::cerr << "magnetar-bench: " << o.waiters << " waiters + " << o.idle_ws
                << " WebSockets need ~" << wanted << " descriptors; the limit is " << fd_limit
                << " (raise `ulimit -Hn`)\n";
      return 1;
    }
  }

  try {
    Runner runner(o, ParseTarget(o.url));
    if (!o.subscribe_url.empty()) runner.set_subscribe_target(ParseTarget(o.subscribe_url));
    if (!o.token.empty()) {
      runner.set_token(o.token);
    } else if (!o.user.empty()) {
      runner.set_token(Login(runner.target(), o.user, o.password));
    } else {
      std::cerr << "magnetar-bench: give --user/--password or --token\n";
      return 1;
    }
    if (o.login_only) {
      std::cout << runner.token() << std::endl;
      return 0;
    }
    Report report;
    if (o.scenario == "publish" || o.scenario == "bulk") {
      report = RunPublish(runner, o.scenario == "bulk");
    } else if (o.scenario == "poll") {
      report = RunPoll(runner);
    } else if (o.scenario == "e2e" || o.scenario == "fanout") {
      report = RunE2e(runner, o.scenario == "fanout");
    } else if (o.scenario.rfind("pulsar-ws-", 0) == 0) {
      report = RunPulsarWs(runner);
    } else {
      report = RunConnections(runner);
    }
    report.json["ok"] = report.ok;
    if (o.json) {
      std::cout << boost::json::serialize(report.json) << std::endl;
    } else {
      PrintTable(o, report);
    }
    return report.ok ? 0 : 2;
  } catch (const std::exception& e) {
    std::cerr << "magnetar-bench: " << e.what() << "\n";
    return 1;
  }
}
