#include "common/message_metrics.h"

#include <array>
#include <memory>

namespace magnetar::metrics {

const char* ProtocolLabel(Protocol p) {
  switch (p) {
    case Protocol::kRelayHttp:
      return "relay_http";
    case Protocol::kRelayWs:
      return "relay_ws";
    case Protocol::kPulsarWs:
      return "pulsar_ws";
  }
  return "unknown";
}

namespace {

std::unique_ptr<MessageMetrics> Make(Protocol p) {
  Registry& r = Registry::Default();
  const Labels l = {{"protocol", ProtocolLabel(p)}};
  return std::unique_ptr<MessageMetrics>(new MessageMetrics{
      r.GetCounter("magnetar_messages_published_total", "Messages stored and acknowledged.", l),
      r.GetCounter("magnetar_publish_failures_total",
                   "Publishes the store refused (answered with an error).", l),
      r.GetHistogram("magnetar_publish_latency_seconds",
                     "Time from a publish reaching the broker to the store's acknowledgement.", l,
                     LatencyBuckets()),
      r.GetCounter("magnetar_messages_delivered_total",
                   "Messages handed to a subscriber's connection (live and replayed).", l),
      r.GetHistogram("magnetar_delivery_latency_seconds",
                     "Time from a message's publish to its hand-off to a live subscriber.", l,
                     LatencyBuckets()),
      r.GetCounter("magnetar_messages_dropped_total",
                   "Messages a subscriber never got because its send queue overflowed.", l),
      r.GetCounter("magnetar_messages_redelivered_total",
                   "Deliveries of a message that had been delivered before (nack, ack timeout, "
                   "consumer gone).",
                   l),
      r.GetGauge("magnetar_websockets_open", "WebSocket connections open now.", l)});
}

}  // namespace

MessageMetrics& MessagesFor(Protocol p) {
  // All protocols at once, in label order, so every series appears from the first scrape.
  static const std::array<std::unique_ptr<MessageMetrics>, kProtocolCount> all = {
      Make(Protocol::kRelayHttp), Make(Protocol::kRelayWs), Make(Protocol::kPulsarWs)};
  return *all[static_cast<size_t>(p)];
}

}  // namespace magnetar::metrics
