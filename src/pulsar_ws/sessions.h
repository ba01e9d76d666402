#pragma once

// The three WebSocket sessions of the Pulsar API. Each lives on its connection's executor and is
// owned by its WsConnection; admission (auth, params, subscription attach) already happened.

#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "pulsar_ws/codec.h"
#include "pulsar_ws/pulsar_ws_api.h"
#include "pulsar_ws/subscription.h"
#include "ws/ws_connection.h"

namespace magnetar::pulsar_ws {

// Fatal post-upgrade errors (spec §2): the Pulsar code goes in the reason text of a legal close.
inline constexpr uint16_t kClosePolicy = 1008;

// /ws/v2/pingpong (Pulsar's WebSocketPingPongServlet): a WebSocket that answers every ping with
// a pong carrying the same payload (the WebSocket layer does that for every connection) and
// ignores data frames. Clients use it to check that WebSockets get through to the broker.
inline constexpr char kPingPongPath[] = "/ws/v2/pingpong";

class PingPongSession final : public ws::WsHandler {
 public:
  void OnText(ws::WsConnection&, std::string_view) override {}
  void OnBinary(ws::WsConnection&, std::string_view) override {}
  void OnClosed(ws::WsConnection&) override {}
};

class ProducerSession : public ws::WsHandler, public std::enable_shared_from_this<ProducerSession> {
 public:
  // `last_sequence`: the broker's de-duplication mark for this producer name (a reconnecting
  // producer numbers its messages after it, as a Pulsar client does with last_sequence_id).
  // `generated_name`: the name is ours, and its de-duplication state goes when the session does.
  ProducerSession(const PulsarWsDeps& deps, std::shared_ptr<ProducerNames> names,
                  core::TopicKey topic, std::string producer_name, bool generated_name,
                  std::optional<uint64_t> last_sequence, ProducerParams params);
  void OnOpen(ws::WsConnection& conn) override;
  void OnText(ws::WsConnection& conn, std::string_view text) override;
  void OnBinary(ws::WsConnection& conn, std::string_view data) override;
  void OnClosed(ws::WsConnection& conn) override;

 private:
  struct Receipt {
    uint64_t seq = 0;
    bool done = false;
    std::string frame;
  };
  void Complete(uint64_t seq, std::string frame);
  void Flush();

  const PulsarWsDeps& deps_;
  std::shared_ptr<ProducerNames> names_;
  core::TopicKey topic_;
  std::string producer_name_;
  bool generated_name_;
  ProducerParams params_;
  std::weak_ptr<ws::WsConnection> conn_;
  std::deque<Receipt> receipts_;  // in publish order; sent as the head completes
  uint64_t next_seq_ = 0;
  uint64_t sequence_id_ = 0;  // the next one this session assigns
  size_t outstanding_ = 0;  // publishes not yet answered by the store
  bool closed_ = false;
};

class ConsumerSession : public ws::WsHandler,
                        public ConsumerSink,
                        public std::enable_shared_from_this<ConsumerSession> {
 public:
  ConsumerSession(std::shared_ptr<Subscription> sub, uint64_t consumer);
  void OnOpen(ws::WsConnection& conn) override;
  void OnText(ws::WsConnection& conn, std::string_view text) override;
  void OnBinary(ws::WsConnection& conn, std::string_view data) override;
  void OnClosed(ws::WsConnection& conn) override;
  void Deliver(std::vector<core::DeliveredMessage> messages) override;
  void SubscriptionGone() override;

 private:
  std::shared_ptr<Subscription> sub_;
  uint64_t consumer_;
  std::weak_ptr<ws::WsConnection> conn_;
  bool closed_ = false;
};

class ReaderSession : public ws::WsHandler, public std::enable_shared_from_this<ReaderSession> {
 public:
  ReaderSession(const PulsarWsDeps& deps, core::TopicKey topic, ReaderParams params);
  void OnOpen(ws::WsConnection& conn) override;
  void OnText(ws::WsConnection& conn, std::string_view text) override;
  void OnBinary(ws::WsConnection& conn, std::string_view data) override;
  void OnClosed(ws::WsConnection& conn) override;
  void Wake();

 private:
  void ReadMore();

  const PulsarWsDeps& deps_;
  core::TopicKey topic_;
  ReaderParams params_;
  std::weak_ptr<ws::WsConnection> conn_;
  std::shared_ptr<core::SubscriberSink> sink_;
  MessageId cursor_;
  int64_t window_ = 1000;
  int64_t in_flight_ = 0;
  bool reading_ = false;
  bool more_ = false;  // something may have arrived while reading
  bool closed_ = false;
};

}  // namespace magnetar::pulsar_ws
