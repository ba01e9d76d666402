#pragma once

// The message-flow metrics every front end reports, one set per protocol, so that a dashboard or
// a Prometheus query compares them side by side:
//   magnetar_messages_published_total{protocol}     messages stored and acknowledged
//   magnetar_publish_failures_total{protocol}       publishes refused by the store (5xx, error receipts)
//   magnetar_publish_latency_seconds{protocol}      from the request reaching the broker to the store's ack
//   magnetar_messages_delivered_total{protocol}     messages handed to a subscriber's connection
//   magnetar_delivery_latency_seconds{protocol}     publish time to hand-off, live deliveries only
//   magnetar_messages_dropped_total{protocol}       messages a slow subscriber never got (its queue overflowed)
//   magnetar_messages_redelivered_total{protocol}   deliveries of a message already delivered once
//   magnetar_websockets_open{protocol}              WebSocket connections open now
// Every series exists (at 0) from the first use of any, so a scrape always shows all of them.

#include <cstddef>

#include "common/clock.h"
#include "common/metrics.h"

namespace magnetar::metrics {

enum class Protocol { kRelayHttp, kRelayWs, kPulsarWs };
inline constexpr size_t kProtocolCount = 3;

const char* ProtocolLabel(Protocol p);  // "relay_http", "relay_ws", "pulsar_ws"

struct MessageMetrics {
  Counter& published;
  Counter& publish_failures;
  Histogram& publish_latency;
  Counter& delivered;
  Histogram& delivery_latency;
  Counter& dropped;
  Counter& redelivered;
  Gauge& websockets_open;

  // `count` messages delivered live; `publish_time` of the newest, `now` from the same clock.
  void Delivered(size_t count, UnixMicros publish_time, UnixMicros now) {
    delivered.Inc(count);
    delivery_latency.Observe(now > publish_time ? static_cast<double>(now - publish_time) / 1e6
                                                : 0.0);
  }
};

// Registered in Registry::Default() on first use; the reference stays valid for the process.
MessageMetrics& MessagesFor(Protocol p);

}  // namespace magnetar::metrics
