#pragma once

// The scenarios (issue 6). Each fills a Report: JSON figures plus table lines.
//
//   publish      N keep-alive connections, each POSTs one message and waits for the 201, again
//                (closed loop; with --rate, open loop at that total rate). Latency: request ->
//                response (from the scheduled time with --rate, so a stall is not hidden).
//   bulk         the same with --batch messages per request (207).
//   poll         long-poll wake latency: N waiters park on a topic with a cursor; one publisher
//                publishes a message whose payload carries its send time, once all waiters are
//                parked again; latency = publish sent -> waiter's response complete.
//   e2e          publish -> WebSocket delivery latency under --rate (default 10,000 msgs/s) from N
//                publisher connections to --subscribers subscribers (default 1).
//   fanout       one publisher, --subscribers (default 1,000) WebSockets on one topic; deliveries
//                per second. The publisher keeps at most --window messages in flight per
//                subscriber, so it measures delivery capacity rather than queue overflow.
//   connections  hold --waiters long-poll waiters and --idle-ws subscribed idle WebSockets;
//                report the server's RSS (--server-pid) before, after each, and at the end.
//
// The Apache Pulsar WebSocket API v2 (issue 10; topic persistent://<tenant>/default/<topic>,
// the token as ?token=, the same JWT; pulsar_ws_scenarios.cc):
//   pulsar-ws-produce  --connections producer sessions (default 1), each keeping up to --window
//                      publishes without a receipt (at most 1000, the server's
//                      maxPendingMessages); msgs/s with an ok receipt, latency frame -> receipt.
//   pulsar-ws-consume  creates the subscription, pre-fills the topic with --messages (default
//                      100,000) from --connections producers, then --subscribers consumer
//                      sessions (default 1: Exclusive; more: Shared) read it back, acking every
//                      message; msgs/s from their connect until all is read (or --duration).
//                      No warm-up: the window is the whole read.
//   pulsar-ws-latency  --subscribers consumers (acking each message), then --connections
//                      producers open loop at --rate (default 10,000 msgs/s) in total, each frame
//                      stamped with its scheduled send time in a property; latency = scheduled
//                      send -> consumer frame received.

#include <boost/json.hpp>

#include <string>
#include <utility>
#include <vector>

#include "bench/magnetar_bench/common.h"

namespace magnetar::bench {

struct Report {
  boost::json::object json;
  std::vector<std::pair<std::string, std::string>> lines;   // label, value
  std::vector<std::pair<std::string, std::string>> footer;  // printed after the lines (CPU, errors)
  bool ok = true;
  void Add(const std::string& key, boost::json::value v, std::string label, std::string shown) {
    json[key] = std::move(v);
    lines.emplace_back(std::move(label), std::move(shown));
  }
};

// Logs in with --user/--password (POST /auth/login form) and returns the access token.
// Throws std::runtime_error on failure.
std::string Login(const Target& target, const std::string& user, const std::string& password);

Report RunPublish(Runner& runner, bool bulk);
Report RunPoll(Runner& runner);
Report RunE2e(Runner& runner, bool fanout);
Report RunConnections(Runner& runner);
Report RunPulsarWs(Runner& runner);  // pulsar-ws-produce, pulsar-ws-consume, pulsar-ws-latency

}  // namespace magnetar::bench
